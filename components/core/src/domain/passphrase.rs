use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use unicode_normalization::UnicodeNormalization;

use super::Invalid;

/// The secret that proves the right to a PIN: NFKC-normalised, compared exactly as given.
/// Never printed: `Debug` shows a placeholder.
pub struct Passphrase(String);

/// An Argon2id PHC string of a passphrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassphraseHash(pub String);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(***)")
    }
}

/// Argon2id cost parameters (settings `argon2_m_kib`, `argon2_t`, `argon2_p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Iterations.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for Argon2Params {
    /// m = 19456 KiB, t = 2, p = 1 (OWASP's first recommended setting; SPEC §1).
    fn default() -> Self {
        Self { m_kib: 19456, t: 2, p: 1 }
    }
}

impl Argon2Params {
    /// Ranges the settings accept: enough to be a real cost, small enough to answer in time.
    pub const M_KIB: std::ops::RangeInclusive<u32> = 8192..=262_144;
    pub const T: std::ops::RangeInclusive<u32> = 1..=10;
    pub const P: std::ops::RangeInclusive<u32> = 1..=8;

    fn argon2(self) -> Argon2<'static> {
        let params = Params::new(self.m_kib, self.t, self.p, None).unwrap_or_default();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }
}

thread_local! {
    static VERIFICATIONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Argon2 verifications run on this thread so far (tests prove with it that a check runs one).
pub fn argon2_verifications() -> u64 {
    VERIFICATIONS.with(std::cell::Cell::get)
}

/// A hash no passphrase is known for, with the configured parameters: Auth_Check verifies
/// against it when a PIN has no account, so an unknown PIN costs what a wrong passphrase costs
/// under any `argon2_*` setting. Made from the parameters alone (no per-process state: a Spin
/// instance lives for one request).
pub fn dummy_hash(params: Argon2Params) -> PassphraseHash {
    let Argon2Params { m_kib, t, p } = params;
    PassphraseHash(format!("$argon2id$v=19$m={m_kib},t={t},p={p}$KioqKioqKioqKioqKioqKg$hqK2sT9t6HVmW6jkiGcxa4KEb11TYnVLcVqT2BQcwJ4"))
}

impl Passphrase {
    /// Normalises with NFKC and checks the length in characters (`min..=max`).
    pub fn parse(raw: &str, min: usize, max: usize) -> Result<Self, Invalid> {
        let normalized: String = raw.nfkc().collect();
        let len = normalized.chars().count();
        if len < min {
            Err(Invalid("invalid-passphrase-too-short"))
        } else if len > max {
            Err(Invalid("invalid-passphrase-too-long"))
        } else if normalized.chars().any(char::is_control) {
            Err(Invalid("invalid-passphrase-control"))
        } else {
            Ok(Self(normalized))
        }
    }

    /// Hashes with a caller-supplied 16-byte random salt.
    pub fn hash(&self, salt: [u8; 16], params: Argon2Params) -> PassphraseHash {
        let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
        let phc = params
            .argon2()
            .hash_password(self.0.as_bytes(), &salt)
            .expect("hashing with valid parameters cannot fail");
        PassphraseHash(phc.to_string())
    }

    /// Constant-time check against a stored hash, with the hash's own parameters; a malformed
    /// hash never matches (and costs no Argon2 run).
    pub fn verify(&self, hash: &PassphraseHash) -> bool {
        PasswordHash::new(&hash.0)
            .map(|parsed| {
                VERIFICATIONS.with(|n| n.set(n.get() + 1));
                Argon2Params::default().argon2().verify_password(self.0.as_bytes(), &parsed).is_ok()
            })
            .unwrap_or(false)
    }
}

impl PassphraseHash {
    /// Whether the hash was made with exactly these parameters (else a check rehashes it).
    pub fn has_params(&self, params: Argon2Params) -> bool {
        PasswordHash::new(&self.0)
            .ok()
            .and_then(|parsed| Params::try_from(&parsed).ok())
            .is_some_and(|p| (p.m_cost(), p.t_cost(), p.p_cost()) == (params.m_kib, params.t, params.p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_counts_characters_after_nfkc() {
        // "ﬁ" (one char) normalises to "fi" (two chars).
        assert!(Passphrase::parse(&"ﬁ".repeat(8), 15, 256).is_ok());
        assert_eq!(Passphrase::parse(&"ы".repeat(14), 15, 256).unwrap_err(), Invalid("invalid-passphrase-too-short"));
        assert!(Passphrase::parse(&"ы".repeat(15), 15, 256).is_ok());
        assert_eq!(Passphrase::parse(&"a".repeat(257), 15, 256).unwrap_err(), Invalid("invalid-passphrase-too-long"));
    }

    #[test]
    fn hash_is_argon2id_with_the_specified_parameters_and_verifies_exactly() {
        let p = Passphrase::parse("correct horse battery staple", 15, 256).unwrap();
        let h = p.hash([7; 16], Argon2Params::default());
        assert!(h.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", h.0);
        assert!(h.has_params(Argon2Params::default()));
        let light = Argon2Params { m_kib: 8192, t: 1, p: 1 };
        let other_params = p.hash([7; 16], light);
        assert!(other_params.0.starts_with("$argon2id$v=19$m=8192,t=1,p=1$") && !other_params.has_params(Argon2Params::default()));
        assert!(p.verify(&other_params), "a hash is verified with its own parameters");
        assert!(p.verify(&h));
        let other = Passphrase::parse("Correct horse battery staple", 15, 256).unwrap();
        assert!(!other.verify(&h), "comparison must not fold case");
        assert!(!p.verify(&PassphraseHash("garbage".into())));
    }

    #[test]
    fn the_dummy_hash_has_the_configured_cost() {
        let guess = Passphrase::parse("correct horse battery staple", 15, 256).unwrap();
        for params in [Argon2Params::default(), Argon2Params { m_kib: 8192, t: 6, p: 2 }] {
            let hash = dummy_hash(params);
            assert!(hash.has_params(params), "{}", hash.0);
            let before = argon2_verifications();
            assert!(!guess.verify(&hash));
            assert_eq!(argon2_verifications(), before + 1, "a real Argon2 run");
        }
    }

    #[test]
    fn debug_does_not_reveal_the_secret() {
        let p = Passphrase::parse("correct horse battery staple", 15, 256).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}
