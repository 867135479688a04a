//! A one-time email-change code (SPEC §2.3, §5): 6 digits from a CSPRNG, stored only as a salted
//! SHA-256, compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::token::hex;

/// Six decimal digits. Never printed.
pub struct Code(String);

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code(***)")
    }
}

impl Code {
    pub const DIGITS: usize = 6;

    /// A uniform code from random 32-bit draws: a draw at or above the largest multiple of 10^6
    /// is rejected, so no code is likelier than another. `next` yields fresh random words.
    pub fn generate(mut next: impl FnMut() -> u32) -> Self {
        const SPACE: u32 = 1_000_000;
        const LIMIT: u32 = u32::MAX - (u32::MAX % SPACE);
        loop {
            let draw = next();
            if draw < LIMIT {
                return Self(format!("{:06}", draw % SPACE));
            }
        }
    }

    /// Exactly six ASCII digits (surrounding whitespace ignored); anything else is not a code.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        (raw.len() == Self::DIGITS && raw.bytes().all(|b| b.is_ascii_digit())).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The stored form: SHA-256 over a salt (the flow and the send it belongs to) and the code, so
    /// equal codes of different sends hash differently and no table of a million hashes serves
    /// every flow.
    pub fn hash(&self, salt: &str) -> String {
        let mut h = Sha256::new();
        h.update(salt.as_bytes());
        h.update([0]);
        h.update(self.0.as_bytes());
        hex(&h.finalize())
    }

    /// Whether this code hashes to `stored` under `salt`, in time independent of where they differ.
    pub fn matches(&self, salt: &str, stored: &str) -> bool {
        bool::from(self.hash(salt).as_bytes().ct_eq(stored.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_rejected_draws_are_skipped() {
        let mut draws = [u32::MAX, 42].into_iter();
        assert_eq!(Code::generate(|| draws.next().unwrap()).as_str(), "000042");
        assert_eq!(Code::generate(|| 999_999).as_str(), "999999");
    }

    #[test]
    fn only_six_digits_parse() {
        assert_eq!(Code::parse(" 012345 ").unwrap().as_str(), "012345");
        for bad in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", "12 345"] {
            assert!(Code::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_code_matches_its_hash_under_the_same_salt_only() {
        let code = Code::parse("123456").unwrap();
        let stored = code.hash("flow:ref");
        assert!(code.matches("flow:ref", &stored));
        assert!(!code.matches("flow:other", &stored));
        assert!(!Code::parse("123457").unwrap().matches("flow:ref", &stored));
        assert_ne!(stored, "123456");
    }
}
