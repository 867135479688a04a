use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A 256-bit one-time token, base64url without padding (43 characters). Never printed.
pub struct Token(String);

/// The SHA-256 of a token (lower-case hex): the only form that is stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts exactly the shape [`Token::from_random`] produces; anything else is not a token of ours.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        (bytes.len() == 32).then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex(&Sha256::digest(self.0.as_bytes())))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_hashes_to_hex_sha256() {
        let t = Token::from_random([1; 32]);
        assert_eq!(t.as_str().len(), 43);
        let parsed = Token::parse(t.as_str()).unwrap();
        assert_eq!(parsed.hash(), t.hash());
        assert_eq!(t.hash().0.len(), 64);
    }

    #[test]
    fn rejects_other_shapes() {
        for bad in ["", "abc", &"A".repeat(44), "!!!!"] {
            assert!(Token::parse(bad).is_none(), "{bad:?}");
        }
    }
}
