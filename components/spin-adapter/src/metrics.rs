//! `metrics`: dropped. Spin 4.1 gives a component metrics only through `wasi:otel` (unstable, linked
//! only with `spin up --experimental-wasi-otel`), and an import a default `spin up` lacks would stop
//! the app from starting; Spin's own OpenTelemetry signals cover requests (see the README).

use crate::Adapter;
use crate::bindings::exports::gpt_user::accounts::metrics::Guest;

impl Guest for Adapter {
    fn observe(_name: String, _seconds: f64) {}

    fn count(_name: String) {}
}
