//! Settings from Spin variables (read through `wasi:config/store`; with
//! `dependencies_inherit_configuration` the adapter sees the flow component's variables).

use crate::bindings::wasi::config::store as config;

/// Where and as whom mail goes out.
pub struct MailSettings {
    /// `IP:port` of the SMTP relay: Spin gives components no DNS.
    pub smtp_address: String,
    pub from: String,
}

impl MailSettings {
    pub fn load() -> Result<Self, String> {
        let get = |key: &str| config::get(key).map_err(|e| format!("variable {key}: {e:?}"));
        let smtp_address = get("smtp_address")?.ok_or("variable smtp_address is not set")?;
        let from = get("mail_from")?.unwrap_or_else(|| "gpt-user <no-reply@localhost>".to_owned());
        Ok(Self { smtp_address, from })
    }
}

/// Dev mode (Spin variable `dev`) lets GPT actions run without an API key. On our host it is
/// bound to loopback; Spin has no such notion, so every instance says so loudly on stderr (Spin's
/// log) when it starts. Parsed as the flows parse it (`Settings`).
pub fn warn_if_dev() {
    // An unusable `dev` value is the flows' to refuse (503 CONFIG_INVALID), not a dev mode.
    let dev = gpt_user_core::Settings::from_lookup(|key| config::get(key).ok().flatten()).is_ok_and(|s| s.dev);
    if dev {
        eprintln!(
            "spin-adapter: WARNING: dev mode is on (Spin variable `dev`): without `api_keys`, GPT actions \
             answer anyone who can reach this app, and Spin cannot keep them to loopback. \
             Never deploy with dev = true."
        );
    }
}
