//! Host-side bindings of the `imports` world (`wit/world.wit`). Private to the adapters.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "gpt-user:accounts/imports",
    imports: { default: async },
});

pub use gpt_user::accounts::{l10n, mail, store, types};
pub use wasi::config::store as config;
