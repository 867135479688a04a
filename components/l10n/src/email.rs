//! The layout every email shares: subject; intro; the link as a button (HTML) or a bare URL
//! (text); how long it is valid; what to do if the reader did not ask for it; a footer.
//! Each kind supplies `email-<kind>-{subject,intro,action,validity,ignore}` in every locale.

use crate::Texts;

/// A rendered message, ready for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub to: String,
    pub kind: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Kinds we can render.
pub const KINDS: [&str; 5] = ["signup-verification", "signup-existing", "profile-link", "passphrase-changed", "pin-locked"];

pub(crate) fn render(texts: &Texts, locale: &str, kind: &str, to: &str, args: &[(&str, &str)]) -> Result<RenderedEmail, String> {
    if !KINDS.contains(&kind) {
        return Err(format!("unknown email kind {kind:?}"));
    }
    let part = |name: &str| texts.try_format(locale, &format!("email-{kind}-{name}"), args);
    let required = |name: &str| part(name).ok_or_else(|| format!("email {kind} lacks its {name}"));
    let subject = required("subject")?;
    let intro = required("intro")?;
    let validity = required("validity")?;
    let ignore = required("ignore")?;
    let action = part("action");
    let link = args.iter().find(|(k, _)| *k == "link").map(|(_, v)| *v);
    let footer = texts.format(locale, "email-footer", &[]);

    let mut text = format!("{intro}\n\n");
    let mut html = format!(
        "<!doctype html><html lang=\"{locale}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
<body style=\"font-family:sans-serif;line-height:1.5\"><p>{}</p>",
        escape(&subject),
        escape(&intro)
    );
    if let (Some(action), Some(link)) = (action, link) {
        text.push_str(&format!("{action}:\n{link}\n\n"));
        html.push_str(&format!(
            "<p><a href=\"{0}\" style=\"display:inline-block;padding:10px 18px;background:#1a56db;color:#fff;text-decoration:none;border-radius:4px\">{1}</a></p>\
<p style=\"font-size:small\">{0}</p>",
            escape(link),
            escape(&action)
        ));
    }
    text.push_str(&format!("{validity}\n\n{ignore}\n\n-- \n{footer}\n"));
    html.push_str(&format!(
        "<p>{}</p><p>{}</p><hr><p style=\"font-size:small;color:#555\">{}</p></body></html>",
        escape(&validity),
        escape(&ignore),
        escape(&footer)
    ));
    Ok(RenderedEmail { to: to.to_owned(), kind: kind.to_owned(), subject, text, html })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_renders_in_every_locale_with_validity_and_ignore_notes() {
        let t = Texts::new();
        for locale in crate::LOCALES {
            for kind in KINDS {
                let m = render(&t, locale, kind, "a@b.co", &[("link", "https://x/?a=1&b=2"), ("pin", "123456"), ("valid-hours", "24"), ("valid-minutes", "60")]).unwrap();
                assert!(!m.subject.is_empty());
                assert!(m.text.contains("https://x/?a=1&b=2"));
                assert!(m.html.contains("https://x/?a=1&amp;b=2"));
                assert!(!m.text.contains("email-"), "missing message in {locale}/{kind}: {}", m.text);
            }
        }
    }

    static PROBLEMS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    fn record(line: &str) {
        PROBLEMS.lock().unwrap().push(line.to_owned());
    }

    #[test]
    fn the_profile_and_auth_kinds_render_with_exactly_the_arguments_the_core_gives() {
        let t = Texts::with_log(record);
        for locale in crate::LOCALES {
            let link = render(&t, locale, "profile-link", "a@b.co", &[("link", "https://x/profile#token=T"), ("valid-minutes", "60")]).unwrap();
            assert!(link.text.contains("https://x/profile#token=T") && link.text.contains("60"), "{}", link.text);
            let notice = render(&t, locale, "passphrase-changed", "a@b.co", &[("link", "https://x/profile")]).unwrap();
            assert!(notice.text.contains("https://x/profile"));
            let locked = render(&t, locale, "pin-locked", "a@b.co", &[("link", "https://x/profile"), ("pin", "123456")]).unwrap();
            assert!(locked.text.contains("https://x/profile") && locked.text.contains("123456"), "{}", locked.text);
        }
        assert_eq!(*PROBLEMS.lock().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn unknown_kinds_are_an_error() {
        assert!(render(&Texts::new(), "en", "nope", "a@b.co", &[]).is_err());
    }
}
