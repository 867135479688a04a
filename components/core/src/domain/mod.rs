//! Parsed domain values: no raw `String` from a request reaches flow logic.

mod code;
mod email;
mod locale;
mod pin;
mod token;

pub use code::Code;
pub use email::Email;
pub use locale::{Locale, SUPPORTED_LOCALES};
pub mod passphrase;
pub use passphrase::{Argon2Params, Passphrase, PassphraseHash};
pub use pin::Pin;
pub use token::{Token, TokenHash, hex as token_hex};

/// Why a value was rejected; the message id names the rule for l10n.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub &'static str);
