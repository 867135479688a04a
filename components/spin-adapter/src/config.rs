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
