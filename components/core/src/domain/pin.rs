use super::Invalid;

/// The public numeric identifier of an account. Not a secret; random, never sequential.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pin(String);

impl Pin {
    pub const DEFAULT_LEN: usize = 6;
    /// Lengths a PIN may have: shorter ones run out, longer ones are unwieldy in a chat. The
    /// host refuses to start with a `pin_length` outside them.
    pub const LENGTHS: std::ops::RangeInclusive<usize> = 4..=12;

    /// Draws a PIN of `len` digits (the first one non-zero, so it survives a trip through an integer)
    /// from random bytes, rejecting bytes that would bias the digits.
    pub fn generate(len: usize, mut random_byte: impl FnMut() -> u8) -> Self {
        let mut digits = String::with_capacity(len);
        while digits.len() < len {
            let b = random_byte();
            if b >= 250 {
                continue;
            }
            let d = b % 10;
            if digits.is_empty() && d == 0 {
                continue;
            }
            digits.push(char::from(b'0' + d));
        }
        Self(digits)
    }

    /// Accepts digits only, with the first non-zero (as [`Pin::generate`] makes them).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let s = raw.trim();
        if Self::LENGTHS.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0') {
            Ok(Self(s.to_owned()))
        } else {
            Err(Invalid("invalid-pin"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pins_have_the_requested_length_and_parse() {
        let mut n = 0u8;
        for len in [4, 6, 9] {
            let pin = Pin::generate(len, || {
                n = n.wrapping_add(37);
                n
            });
            assert_eq!(pin.as_str().len(), len);
            assert_eq!(Pin::parse(pin.as_str()).unwrap(), pin);
        }
    }

    #[test]
    fn generation_skips_a_leading_zero_and_biased_bytes() {
        let mut bytes = [0u8, 255, 251, 13, 20, 7, 8, 9, 1].into_iter();
        let pin = Pin::generate(6, || bytes.next().unwrap());
        assert_eq!(pin.as_str(), "307891");
    }

    #[test]
    fn rejects_non_digits() {
        for bad in ["", "12a456", "012345", "1"] {
            assert!(Pin::parse(bad).is_err(), "{bad:?}");
        }
    }
}
