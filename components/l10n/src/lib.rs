//! Texts of gpt-user in every supported language: Fluent bundles (`locales/*.ftl`, embedded at
//! build time) and the email layout. Shared by the host's l10n adapter and the Spin adapter, so
//! both runtimes say exactly the same.
//!
//! ```
//! let texts = gpt_user_l10n::Texts::new();
//! assert_eq!(texts.negotiate("ru-RU,ru;q=0.9,en;q=0.8"), "ru");
//! let mail = texts.render_email("en", "signup-verification", "ann@example.com",
//!     &[("link", "https://x/signup/verify#token=t"), ("pin", "123456"), ("valid-hours", "24")]).unwrap();
//! assert!(mail.text.contains("123456"));
//! ```

mod email;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

pub use email::RenderedEmail;

/// Supported locales; the first is the fallback.
pub const LOCALES: [&str; 2] = ["en", "ru"];

const SOURCES: [(&str, &str); 2] = [("en", include_str!("../locales/en.ftl")), ("ru", include_str!("../locales/ru.ftl"))];

/// The loaded bundles. Build once and share: parsing is the expensive part.
pub struct Texts {
    bundles: Vec<(&'static str, FluentBundle<FluentResource>)>,
}

impl Default for Texts {
    fn default() -> Self {
        Self::new()
    }
}

impl Texts {
    pub fn new() -> Self {
        let bundles = SOURCES
            .iter()
            .map(|(locale, source)| {
                let resource = FluentResource::try_new((*source).to_owned()).expect("embedded .ftl files parse");
                let langid = locale.parse().expect("static locale tags parse");
                let mut bundle = FluentBundle::new_concurrent(vec![langid]);
                // No Unicode isolation marks: texts go into JSON, plain-text mail and HTML.
                bundle.set_use_isolating(false);
                bundle.add_resource(resource).expect("embedded .ftl files have unique ids");
                (*locale, bundle)
            })
            .collect();
        Self { bundles }
    }

    /// Picks a supported locale from an `Accept-Language` value or a list of tags; `en` if none fits.
    pub fn negotiate(&self, requested: &str) -> &'static str {
        let mut prefs: Vec<(f32, &str)> = requested
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let tag = pieces.next()?.trim();
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (!tag.is_empty() && q > 0.0).then_some((q, tag))
            })
            .collect();
        // Stable sort keeps the header's order among equal weights.
        prefs.sort_by(|a, b| b.0.total_cmp(&a.0));
        prefs
            .iter()
            .filter_map(|(_, tag)| {
                let primary = tag.split(['-', '_']).next()?.to_ascii_lowercase();
                LOCALES.iter().find(|l| **l == primary).copied()
            })
            .next()
            .unwrap_or(LOCALES[0])
    }

    fn bundle(&self, locale: &str) -> &FluentBundle<FluentResource> {
        let found = self.bundles.iter().find(|(l, _)| *l == locale);
        &found.unwrap_or(&self.bundles[0]).1
    }

    /// Formats `id` in `locale` (falling back to English, then to the id itself).
    pub fn format(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> String {
        self.try_format(locale, id, args).unwrap_or_else(|| id.to_owned())
    }

    pub(crate) fn try_format(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> Option<String> {
        let mut fluent_args = FluentArgs::new();
        for (k, v) in args {
            fluent_args.set(*k, *v);
        }
        [self.bundle(locale), self.bundle(LOCALES[0])].into_iter().find_map(|bundle| {
            let pattern = bundle.get_message(id)?.value()?;
            let mut errors = vec![];
            Some(bundle.format_pattern(pattern, Some(&fluent_args), &mut errors).into_owned())
        })
    }

    /// Renders an email kind for `to`; see [`email`] for the layout.
    pub fn render_email(&self, locale: &str, kind: &str, to: &str, args: &[(&str, &str)]) -> Result<RenderedEmail, String> {
        email::render(self, locale, kind, to, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_by_weight_and_falls_back_to_english() {
        let t = Texts::new();
        assert_eq!(t.negotiate("de-DE, ru;q=0.5, en;q=0.4"), "ru");
        assert_eq!(t.negotiate("en;q=0.1, ru"), "ru");
        assert_eq!(t.negotiate("fr"), "en");
        assert_eq!(t.negotiate(""), "en");
    }

    #[test]
    fn every_message_exists_in_every_locale() {
        let parse = |src: &str| -> Vec<String> {
            src.lines().filter_map(|l| l.split_once(" = ").map(|(id, _)| id.trim().to_owned())).filter(|id| !id.starts_with('#')).collect()
        };
        let en = parse(SOURCES[0].1);
        let ru = parse(SOURCES[1].1);
        assert_eq!(en, ru, "en.ftl and ru.ftl must define the same ids in the same order");
    }

    #[test]
    fn formats_with_arguments_and_without_isolation_marks() {
        let t = Texts::new();
        let s = t.format("ru", "error-invalid-input", &[("field", "email"), ("reason", "x")]);
        assert_eq!(s, "Поле «email» заполнено неверно: x");
        assert_eq!(t.format("xx", "error-not-found", &[]), "There is nothing at this address.");
        assert_eq!(t.format("en", "no-such-id", &[]), "no-such-id");
    }
}
