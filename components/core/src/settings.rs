//! Runtime settings of a flow, read from `wasi:config/store` keys (Spin variables).
//!
//! Each variable's accepted values are defined here once; the host's `Config::validate` checks
//! its configuration through [`Settings::from_lookup`] too, so a value the host refuses to start
//! with is one the components refuse to serve with on Spin.

use std::ops::RangeInclusive;

use crate::domain::{Argon2Params, Pin};

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
    /// Accounts still pending that were created in the last hour, counted in the
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

/// What a variable accepts, for the refusal's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// An integer in `min..=max`.
    Range { min: u64, max: u64 },
    /// `true` or `false` (also `1`/`0`, `yes`/`no`).
    Flag,
    /// An `http://` or `https://` URL.
    HttpUrl,
    /// `IP:port` (Spin gives components no DNS).
    SocketAddress,
}

impl std::fmt::Display for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Range { min, max } => write!(f, "an integer between {min} and {max}"),
            Self::Flag => f.write_str("true or false"),
            Self::HttpUrl => f.write_str("an http:// or https:// URL"),
            Self::SocketAddress => f.write_str("an IP address and port, such as 127.0.0.1:2525"),
        }
    }
}

/// A variable that is set but cannot be used. Its `Display` quotes the value, so it is for the
/// operator's log; answers name only the variable and what it accepts. No secret variable
/// (`api_keys`) has a format, so none is ever quoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable} must be {accepted}, not {value:?}")]
pub struct InvalidSetting {
    pub variable: &'static str,
    pub value: String,
    pub accepted: Accepted,
}

impl Settings {
    /// Allowed `email_change_window_s`, in seconds.
    pub const EMAIL_CHANGE_WINDOWS_S: RangeInclusive<u32> = 60..=3600;
    /// Allowed `passphrase_min` and `passphrase_max`, in characters.
    pub const PASSPHRASE_MINS: RangeInclusive<usize> = 8..=256;
    pub const PASSPHRASE_MAXES: RangeInclusive<usize> = 15..=4096;

    /// Builds settings from a key lookup. A variable that is not set (or set empty) keeps its
    /// default; one that is set to a value it does not accept is an error naming it.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, InvalidSetting> {
        let d = Self::default();
        let set = |key: &str| get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let invalid = |variable: &'static str, value: String, accepted: Accepted| InvalidSetting { variable, value, accepted };
        let flag = |variable: &'static str, default: bool| match set(variable) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(invalid(variable, v, Accepted::Flag)),
            },
        };
        let base_url = match set("base_url") {
            None => d.base_url,
            Some(v) => {
                let url = v.trim_end_matches('/');
                let host = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
                if !host.is_some_and(|h| !h.is_empty() && !h.contains(char::is_whitespace)) {
                    return Err(invalid("base_url", v, Accepted::HttpUrl));
                }
                url.to_owned()
            }
        };
        if let Some(v) = set("smtp_address")
            && v.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(invalid("smtp_address", v, Accepted::SocketAddress));
        }
        Ok(Self {
            base_url,
            pin_length: number(&set, "pin_length", d.pin_length, Pin::LENGTHS)?,
            api_keys: get("api_keys")
                .map(|v| v.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default(),
            dev: flag("dev", d.dev)?,
            conceal_accounts: flag("conceal_accounts", d.conceal_accounts)?,
            policy_version: set("policy_version").unwrap_or(d.policy_version),
            passphrase_min: number(&set, "passphrase_min", d.passphrase_min, Self::PASSPHRASE_MINS)?,
            passphrase_max: number(&set, "passphrase_max", d.passphrase_max, Self::PASSPHRASE_MAXES)?,
            argon2: Argon2Params {
                m_kib: number(&set, "argon2_m_kib", d.argon2.m_kib, Argon2Params::M_KIB)?,
                t: number(&set, "argon2_t", d.argon2.t, Argon2Params::T)?,
                p: number(&set, "argon2_p", d.argon2.p, Argon2Params::P)?,
            },
            email_change_window_s: number(&set, "email_change_window_s", d.email_change_window_s, Self::EMAIL_CHANGE_WINDOWS_S)?,
            max_pending_signups_per_hour: number(&set, "max_pending_signups_per_hour", d.max_pending_signups_per_hour, 0..=u32::MAX)?,
        })
    }
}

/// An integer variable within `range`, or its default when not set.
fn number<N>(set: &impl Fn(&str) -> Option<String>, variable: &'static str, default: N, range: RangeInclusive<N>) -> Result<N, InvalidSetting>
where
    N: std::str::FromStr + PartialOrd + Copy + TryInto<u64>,
{
    let Some(v) = set(variable) else { return Ok(default) };
    match v.parse::<N>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => {
            let bound = |n: N| n.try_into().unwrap_or(u64::MAX);
            Err(InvalidSetting { variable, value: v, accepted: Accepted::Range { min: bound(*range.start()), max: bound(*range.end()) } })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, InvalidSetting> {
        Settings::from_lookup(|k| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn unset_and_empty_variables_keep_their_defaults() {
        let s = with(&[("pin_length", ""), ("dev", " ")]).unwrap();
        assert_eq!((s.pin_length, s.dev, s.email_change_window_s), (6, false, 600));
    }

    #[test]
    fn good_values_are_taken() {
        let s = with(&[
            ("pin_length", "8"),
            ("argon2_m_kib", "65536"),
            ("argon2_t", " 3 "),
            ("email_change_window_s", "60"),
            ("dev", "TRUE"),
            ("conceal_accounts", "yes"),
            ("base_url", "https://accounts.example.com/"),
            ("smtp_address", "10.0.0.5:25"),
        ])
        .unwrap();
        assert_eq!((s.pin_length, s.argon2.m_kib, s.argon2.t, s.email_change_window_s), (8, 65536, 3, 60));
        assert!(s.dev && s.conceal_accounts);
        assert_eq!(s.base_url, "https://accounts.example.com");
    }

    #[test]
    fn a_value_that_is_set_but_unusable_is_refused_with_the_variable_and_its_range() {
        for (variable, value, accepted) in [
            ("email_change_window_s", "15", "between 60 and 3600"),
            ("argon2_m_kib", "64MiB", "between 8192 and 262144"),
            ("argon2_t", "11", "between 1 and 10"),
            ("argon2_p", "0", "between 1 and 8"),
            ("pin_length", "20", "between 4 and 12"),
            ("pin_length", "-6", "between 4 and 12"),
            ("passphrase_min", "4", "between 8 and 256"),
            ("passphrase_max", "x", "between 15 and 4096"),
            ("dev", "on", "true or false"),
            ("conceal_accounts", "maybe", "true or false"),
            ("base_url", "example.com", "http://"),
            ("smtp_address", "mail.example.com:25", "IP address and port"),
        ] {
            let err = with(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable);
            let text = err.to_string();
            assert!(text.starts_with(variable) && text.contains(accepted) && text.contains(value), "{text}");
        }
    }
}
