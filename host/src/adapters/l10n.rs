//! `gpt-user:accounts/l10n` over the shared Fluent bundles.

use crate::bindings::l10n;
use crate::bindings::types::Message;
use crate::runtime::HostState;

impl l10n::Host for HostState {
    async fn negotiate(&mut self, requested: String) -> String {
        self.shared.texts.negotiate(&requested).to_owned()
    }

    async fn format(&mut self, locale: String, id: String, args: Vec<(String, String)>) -> String {
        self.shared.texts.format(&locale, &id, &borrowed(&args))
    }

    async fn render_email(&mut self, locale: String, kind: String, to: String, args: Vec<(String, String)>) -> Result<Message, String> {
        let m = self.shared.texts.render_email(&locale, &kind, &to, &borrowed(&args))?;
        Ok(Message { to: m.to, kind: m.kind, subject: m.subject, text: m.text, html: m.html })
    }
}

fn borrowed(args: &[(String, String)]) -> Vec<(&str, &str)> {
    args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}
