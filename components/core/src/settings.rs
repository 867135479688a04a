//! Runtime settings of a flow, read from `wasi:config/store` keys (Spin variables).

use crate::domain::Argon2Params;

/// Settings with the defaults of SPEC.md.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Public origin for links in emails, without a trailing slash (`base_url`).
    pub base_url: String,
    /// Digits of a new PIN (`pin_length`, 4..=12).
    pub pin_length: usize,
    /// Service API keys for GPT actions (`api_keys`, comma-separated). Empty: GPT actions answer
    /// `403 API_KEY_NOT_CONFIGURED`, unless [`Settings::dev`] is on.
    pub api_keys: Vec<String>,
    /// Dev mode (`dev`): GPT actions run without a key when none is configured. Off by default,
    /// so a deployment with default variables is never open to anyone.
    pub dev: bool,
    /// Answer sign-up for a taken address like a new one and email the owner (`conceal_accounts`).
    pub conceal_accounts: bool,
    /// Version of the privacy policy the consent refers to (`policy_version`).
    pub policy_version: String,
    pub passphrase_min: usize,
    pub passphrase_max: usize,
    /// Cost of new passphrase hashes (`argon2_m_kib`, `argon2_t`, `argon2_p`); a successful
    /// Auth_Check rehashes a stored hash made with other parameters.
    pub argon2: Argon2Params,
    /// Seconds the code to a new address may be entered after it was sent
    /// (`email_change_window_s`, 60..=3600; SPEC §2.3 step 5).
    pub email_change_window_s: u32,
    /// Sign-ups that may create a pending account within an hour, counted over the shared
    /// database (`max_pending_signups_per_hour`; 0: no cap); beyond it SignUp_Init answers `429`.
    pub max_pending_signups_per_hour: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:3000".into(),
            pin_length: 6,
            api_keys: Vec::new(),
            dev: false,
            conceal_accounts: false,
            policy_version: "1".into(),
            passphrase_min: 15,
            passphrase_max: 256,
            argon2: Argon2Params::default(),
            email_change_window_s: 600,
            max_pending_signups_per_hour: 1000,
        }
    }
}

impl Settings {
    /// Allowed `email_change_window_s`, in seconds.
    pub const EMAIL_CHANGE_WINDOWS_S: std::ops::RangeInclusive<u32> = 60..=3600;

    /// Builds settings from a key lookup; a missing or unparsable value keeps the default.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let flag = |key: &str| get(key).is_some_and(|v| matches!(v.trim(), "true" | "1" | "yes"));
        let num = |key: &str, default: usize, range: std::ops::RangeInclusive<usize>| {
            get(key).and_then(|v| v.trim().parse().ok()).filter(|n| range.contains(n)).unwrap_or(default)
        };
        let cost = |key: &str, default: u32, range: std::ops::RangeInclusive<u32>| {
            get(key).and_then(|v| v.trim().parse().ok()).filter(|n| range.contains(n)).unwrap_or(default)
        };
        Self {
            base_url: get("base_url")
                .map(|v| v.trim().trim_end_matches('/').to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or(d.base_url),
            pin_length: num("pin_length", d.pin_length, crate::domain::Pin::LENGTHS),
            api_keys: get("api_keys")
                .map(|v| v.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            dev: flag("dev"),
            conceal_accounts: flag("conceal_accounts"),
            policy_version: get("policy_version").filter(|v| !v.trim().is_empty()).unwrap_or(d.policy_version),
            passphrase_min: num("passphrase_min", d.passphrase_min, 8..=256),
            passphrase_max: num("passphrase_max", d.passphrase_max, 15..=4096),
            argon2: Argon2Params {
                m_kib: cost("argon2_m_kib", d.argon2.m_kib, Argon2Params::M_KIB),
                t: cost("argon2_t", d.argon2.t, Argon2Params::T),
                p: cost("argon2_p", d.argon2.p, Argon2Params::P),
            },
            email_change_window_s: cost("email_change_window_s", d.email_change_window_s, Self::EMAIL_CHANGE_WINDOWS_S),
            max_pending_signups_per_hour: cost("max_pending_signups_per_hour", d.max_pending_signups_per_hour, 0..=u32::MAX),
        }
    }
}
