use super::Invalid;

/// Locales we have texts for; the first is the fallback.
pub const SUPPORTED_LOCALES: [&str; 2] = ["en", "ru"];

/// A supported locale. Accepts a BCP 47 tag whose primary language we support
/// (`ru`, `ru-RU`, `en_GB`) and keeps the primary language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locale(&'static str);

impl Locale {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let raw = raw.trim();
        let well_formed = !raw.is_empty()
            && raw.len() <= 35
            && raw.split(['-', '_']).all(|p| !p.is_empty() && p.len() <= 8 && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if !well_formed {
            return Err(Invalid("invalid-locale"));
        }
        let primary = raw.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
        SUPPORTED_LOCALES
            .iter()
            .find(|l| **l == primary)
            .map(|l| Self(l))
            .ok_or(Invalid("invalid-locale"))
    }

    pub fn fallback() -> Self {
        Self(SUPPORTED_LOCALES[0])
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_primary_language_of_a_supported_tag() {
        assert_eq!(Locale::parse("ru-RU").unwrap().as_str(), "ru");
        assert_eq!(Locale::parse("EN_gb").unwrap().as_str(), "en");
    }

    #[test]
    fn rejects_unsupported_or_malformed_tags() {
        for bad in ["", "de", "xx-YY", "en--US", "<script>", "e n"] {
            assert!(Locale::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
