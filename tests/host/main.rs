//! In-process tests of the host: each starts its own host and uses its clock, database,
//! configuration or test components (see `helpers::Control`). Never run against a remote server.

/// Always an in-process host (see `helpers::spawn_with`).
const REMOTE_CAPABLE: bool = false;

#[path = "../api/chromium.rs"]
mod chromium;
#[path = "../api/helpers.rs"]
mod helpers;
/// The SDK driver; this binary signs in by passphrase only.
#[allow(dead_code)]
#[path = "../api/oauth_client.rs"]
mod oauth_client;
/// Composition as `wac plug` does it (shared with the Spin tests).
#[path = "../spin/src/compose.rs"]
mod compose;
mod audit;
mod auth;
mod conceal;
mod email_change;
mod embed;
mod limits;
mod mail;
mod metrics;
mod oauth;
mod operator;
mod outbox;
mod prehijack;
mod profile;
mod runtime;
mod server;
mod signup;
mod store;
