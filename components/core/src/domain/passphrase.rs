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

/// Argon2id with m = 19456 KiB, t = 2, p = 1 (OWASP's first recommended setting).
fn argon2() -> Argon2<'static> {
    let params = Params::new(19456, 2, 1, None).expect("static Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
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
    pub fn hash(&self, salt: [u8; 16]) -> PassphraseHash {
        let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
        let phc = argon2()
            .hash_password(self.0.as_bytes(), &salt)
            .expect("hashing with valid parameters cannot fail");
        PassphraseHash(phc.to_string())
    }

    /// Constant-time check against a stored hash; a malformed hash never matches.
    pub fn verify(&self, hash: &PassphraseHash) -> bool {
        PasswordHash::new(&hash.0)
            .map(|parsed| argon2().verify_password(self.0.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
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
        let h = p.hash([7; 16]);
        assert!(h.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", h.0);
        assert!(p.verify(&h));
        let other = Passphrase::parse("Correct horse battery staple", 15, 256).unwrap();
        assert!(!other.verify(&h), "comparison must not fold case");
        assert!(!p.verify(&PassphraseHash("garbage".into())));
    }

    #[test]
    fn debug_does_not_reveal_the_secret() {
        let p = Passphrase::parse("correct horse battery staple", 15, 256).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }
}
