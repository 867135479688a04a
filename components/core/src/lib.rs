//! Domain types and flows of gpt-user.
//!
//! Plain Rust: it compiles natively (unit tests, benchmarks) and into every flow component.
//! The flows see only the port traits of [`ports`]; a component implements them over the WIT
//! imports (`gpt-user:accounts/store`, `l10n`, `wasi:config/store`), tests over [`memory`].
//!
//! ```text
//! HTTP request ─▶ api::route ─▶ flow step ─▶ ports::Store::apply(ops)  (one transaction)
//!                                   └──────▶ ports::L10n (messages, emails)
//! ```

pub mod api;
pub mod audit;
pub mod deadline;
pub mod domain;
pub mod memory;
pub mod net;
pub mod ports;
pub mod settings;
pub mod wit;

pub use api::{Request, Response};
pub use ports::{Env, L10n, Store};
pub use settings::Settings;
