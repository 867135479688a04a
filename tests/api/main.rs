//! The black-box HTTP suite: every test here talks only HTTP (and reads mail from an SMTP
//! listener), so it runs against an in-process host or, with `GPT_USER_TEST_BASE_URL`, against any
//! running server — ours elsewhere, or `spin up`. Tests that need the host's clock, database or
//! configuration live in `tests/host`.

/// This binary may target a server elsewhere (see `helpers::spawn_with`).
const REMOTE_CAPABLE: bool = true;

mod auth;
mod browser;
mod chromium;
mod email_change;
mod helpers;
mod input;
mod mail;
mod mcp;
mod oauth;
mod oauth_client;
mod oauth_browser;
mod profile;
mod signup;
