//! Host-side bindings of the `imports` world (`wit/world.wit`). Private to the adapters.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "gpt-user:accounts/imports",
    imports: { default: async },
});

pub use gpt_user::accounts::{ephemeral, l10n, mail, metrics, store, types};
pub use wasi::config::store as config;

// The WIT types and the core's, converted field by field in one place for every runtime.
gpt_user_core::wit_conversions!();
