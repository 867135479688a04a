//! `gpt-user:accounts/l10n` over the embedded Fluent bundles of `gpt-user-l10n`.

use std::sync::OnceLock;

use gpt_user_l10n::Texts;

use crate::bindings::exports::gpt_user::accounts::l10n::Guest;
use crate::bindings::exports::gpt_user::accounts::types::Message;
use crate::Adapter;

/// One per instance; a message is parsed on its first use in the instance (`negotiate` parses
/// nothing), so a request pays only for the messages it formats.
fn texts() -> &'static Texts {
    static TEXTS: OnceLock<Texts> = OnceLock::new();
    TEXTS.get_or_init(Texts::new)
}

fn borrowed(args: &[(String, String)]) -> Vec<(&str, &str)> {
    args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

impl Guest for Adapter {
    fn negotiate(requested: String) -> String {
        texts().negotiate(&requested).to_owned()
    }

    fn format(locale: String, id: String, args: Vec<(String, String)>) -> String {
        texts().format(&locale, &id, &borrowed(&args))
    }

    fn render_email(locale: String, kind: String, to: String, args: Vec<(String, String)>) -> Result<Message, String> {
        let m = texts().render_email(&locale, &kind, &to, &borrowed(&args))?;
        Ok(Message { to: m.to, kind: m.kind, subject: m.subject, text: m.text, html: m.html })
    }
}
