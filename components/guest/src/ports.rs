//! The core's ports over the WIT imports.

use gpt_user_core::ports::{self as core, Env, Ephemeral, L10n, Store, StoreError, Timestamp};
use gpt_user_core::settings::{InvalidSetting, Settings};

use crate::gpt_user::accounts::{ephemeral, l10n, store, types};
use crate::wasi::config::store as config;

pub struct WitStore;
pub struct WitEphemeral;
pub struct WitL10n;
pub struct WasiEnv;
pub struct WitMetrics;
/// Outbound HTTPS over `wasi:http/client@0.3.0` ([`crate::http::get`]).
pub struct WasiFetch;

impl core::Fetch for WasiFetch {
    fn get_json<'a>(&'a self, url: &'a str, max_bytes: usize, timeout_ms: u32) -> core::Fetching<'a> {
        Box::pin(crate::http::get(url, "application/json", max_bytes, timeout_ms))
    }
}

impl gpt_user_core::ports::Metrics for WitMetrics {
    fn observe(&self, name: &'static str, seconds: f64) {
        crate::gpt_user::accounts::metrics::observe(name, seconds);
    }

    fn count(&self, name: &'static str) {
        crate::gpt_user::accounts::metrics::count(name);
    }
}

pub fn settings() -> Result<Settings, InvalidSetting> {
    Settings::from_lookup(|key| config::get(key).ok().flatten())
}

impl Store for WitStore {
    fn find_user_by_email(&self, email: &str) -> Result<Option<core::User>, StoreError> {
        Ok(store::find_user_by_email(email)?.map(Into::into))
    }

    fn find_user_by_pin(&self, pin: &str) -> Result<Option<core::User>, StoreError> {
        Ok(store::find_user_by_pin(pin)?.map(Into::into))
    }

    fn find_user_by_id(&self, id: &str) -> Result<Option<core::User>, StoreError> {
        Ok(store::find_user_by_id(id)?.map(Into::into))
    }

    fn find_secret(&self, hash: &str, purpose: core::SecretPurpose, now: Timestamp) -> Result<Option<core::Secret>, StoreError> {
        Ok(store::find_secret(hash, purpose.into(), now)?.map(Into::into))
    }

    fn find_email_change(&self, id: &str) -> Result<Option<core::EmailChange>, StoreError> {
        Ok(store::find_email_change(id)?.map(Into::into))
    }

    fn find_oauth_client(&self, id: &str) -> Result<Option<core::OauthClient>, StoreError> {
        Ok(store::find_oauth_client(id)?.map(Into::into))
    }

    fn find_oauth_token(&self, hash: &str) -> Result<Option<(core::OauthToken, core::OauthGrant)>, StoreError> {
        Ok(store::find_oauth_token(hash)?.map(|(t, g)| (t.into(), g.into())))
    }

    fn apply(&self, ops: Vec<core::Op>) -> Result<(), StoreError> {
        let mail = ops.iter().any(|op| matches!(op, core::Op::EnqueueMail(..)));
        let ops: Vec<store::Op> = ops.into_iter().map(Into::into).collect();
        store::apply(&ops)?;
        if mail {
            crate::mail_queued();
        }
        Ok(())
    }
}

// The WIT types and the core's, converted field by field in one place for every runtime.
gpt_user_core::wit_conversions!();

impl Ephemeral for WitEphemeral {
    fn put(&self, key: &str, value: &str, now: Timestamp, expires_at: Timestamp) -> Result<(), StoreError> {
        Ok(ephemeral::put(key, value, now, expires_at)?)
    }

    fn get(&self, key: &str, now: Timestamp) -> Result<Option<String>, StoreError> {
        Ok(ephemeral::get(key, now)?)
    }

    fn increment(&self, key: &str, now: Timestamp, expires_at: Timestamp) -> Result<u32, StoreError> {
        Ok(ephemeral::increment(key, now, expires_at)?)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        Ok(ephemeral::delete(key)?)
    }
}

impl L10n for WitL10n {
    fn negotiate(&self, requested: &str) -> String {
        l10n::negotiate(requested)
    }

    fn format(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> String {
        l10n::format(locale, id, &owned(args))
    }

    fn render_email(&self, locale: &str, kind: &str, to: &str, args: &[(&str, &str)]) -> Result<core::Message, String> {
        l10n::render_email(locale, kind, to, &owned(args))
            .map(Into::into)
    }
}

fn owned(args: &[(&str, &str)]) -> Vec<(String, String)> {
    args.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

impl Env for WasiEnv {
    fn now(&self) -> Timestamp {
        let t = wasip2::clocks::wall_clock::now();
        t.seconds as i64 * 1000 + i64::from(t.nanoseconds / 1_000_000)
    }

    fn monotonic_ns(&self) -> u64 {
        wasip2::clocks::monotonic_clock::now()
    }

    fn fill_random(&self, buf: &mut [u8]) {
        let bytes = wasip2::random::random::get_random_bytes(buf.len() as u64);
        buf.copy_from_slice(&bytes);
    }
}
