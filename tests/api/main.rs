//! Black-box HTTP tests: one binary, a fresh host per test (see `helpers::spawn_app`).

mod browser;
mod hardening_host;
mod helpers;
mod input;
mod mail;
mod runtime;
mod signup;
