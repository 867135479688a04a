//! The layout every email shares: subject; intro; the code, large (HTML) or on a line of its own
//! (text); the link as a button (HTML) or a bare URL (text); how long it is valid; what to do if
//! the reader did not ask for it; a footer.
//! Each kind supplies `email-<kind>-{subject,intro,validity,ignore}` in every locale, and
//! `email-<kind>-action` when it carries a link. The code never goes into the subject: subjects
//! show up in notifications and mailbox lists, where anyone looking at the screen could read it.

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
pub const KINDS: [&str; 10] = [
    "signup-verification",
    "signup-existing",
    "profile-link",
    "passphrase-changed",
    "pin-locked",
    "email-change-current",
    "email-change-new",
    "email-change-taken",
    "email-changed",
    "oauth-sign-in-code",
];

/// Kinds that exist to carry a `code`: rendering one without it is a bug in the caller.
const CODE_KINDS: [&str; 3] = ["email-change-current", "email-change-new", "oauth-sign-in-code"];

pub(crate) fn render(texts: &Texts, locale: &str, kind: &str, to: &str, args: &[(&str, &str)]) -> Result<RenderedEmail, String> {
    if !KINDS.contains(&kind) {
        return Err(format!("unknown email kind {kind:?}"));
    }
    let arg = |name: &str| args.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let link = arg("link");
    let code = arg("code");
    if code.is_none() && CODE_KINDS.contains(&kind) {
        return Err(format!("email {kind} lacks its code"));
    }
    let part = |name: &str| texts.try_format(locale, &format!("email-{kind}-{name}"), args);
    let required = |name: &str| part(name).ok_or_else(|| format!("email {kind} lacks its {name}"));
    let subject = required("subject")?;
    if code.is_some_and(|code| subject.contains(code)) {
        return Err(format!("the subject of email {kind} shows its code"));
    }
    let intro = required("intro")?;
    let validity = required("validity")?;
    let ignore = required("ignore")?;
    let action = part("action");
    let footer = texts.format(locale, "email-footer", &[]);

    let mut text = format!("{intro}\n\n");
    let mut html = format!(
        "<!doctype html><html lang=\"{locale}\"><head><meta charset=\"utf-8\"><title>{}</title></head>\
<body style=\"font-family:sans-serif;line-height:1.5\"><p>{}</p>",
        escape(&subject),
        escape(&intro)
    );
    if let Some(code) = code {
        // Alone on its line, so a reader (or a mail client's "copy code") takes exactly the digits.
        text.push_str(&format!("{code}\n\n"));
        html.push_str(&format!(
            "<p style=\"font-family:ui-monospace,Menlo,Consolas,monospace;font-size:32px;font-weight:bold;letter-spacing:6px;\
padding:12px 18px;background:#f3f4f6;border-radius:4px;display:inline-block\">{}</p>",
            escape(code)
        ));
    }
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
        let args = [
            ("link", "https://x/?a=1&b=2"),
            ("pin", "123456"),
            ("code", "654321"),
            ("new-email", "n***@example.com"),
            ("valid-hours", "24"),
            ("valid-minutes", "60"),
        ];
        for locale in crate::LOCALES {
            for kind in KINDS {
                let m = render(&t, locale, kind, "a@b.co", &args).unwrap();
                assert!(!m.subject.is_empty());
                if CODE_KINDS.contains(&kind) {
                    assert!(m.text.contains("\n654321\n") && m.html.contains(">654321</p>"), "{locale}/{kind}: {}", m.text);
                } else {
                    assert!(m.text.contains("https://x/?a=1&b=2"), "{locale}/{kind}: {}", m.text);
                    assert!(m.html.contains("https://x/?a=1&amp;b=2"));
                }
                assert!(!m.text.contains("email-"), "missing message in {locale}/{kind}: {}", m.text);
            }
        }
    }

    /// Every run of six or more digits in `s`.
    fn digit_runs(s: &str) -> Vec<&str> {
        s.split(|c: char| !c.is_ascii_digit()).filter(|run| run.len() >= 6).collect()
    }

    #[test]
    fn a_code_email_shows_the_code_in_both_parts_and_nowhere_else_not_in_the_subject() {
        let t = Texts::with_log(record);
        for locale in crate::LOCALES {
            for kind in CODE_KINDS {
                let m = render(&t, locale, kind, "a@b.co", &[("code", "042917"), ("valid-minutes", "10")]).unwrap();
                assert!(!m.subject.contains("042917"), "{}", m.subject);
                assert!(digit_runs(&m.subject).is_empty(), "{}", m.subject);
                assert_eq!(digit_runs(&m.text), ["042917"], "the code is the text's only run of 6 digits: {}", m.text);
                assert!(m.text.lines().any(|line| line == "042917"), "the code on a line of its own: {}", m.text);
                assert!(m.text.contains("10"), "the validity in minutes: {}", m.text);
                assert!(m.html.contains(">042917</p>") && m.html.contains("monospace"), "{}", m.html);
            }
            let missing = render(&t, locale, "email-change-new", "a@b.co", &[("valid-minutes", "10")]);
            assert!(missing.is_err(), "a code email without its code is refused");
        }
    }

    static PROBLEMS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    fn record(line: &str) {
        PROBLEMS.lock().unwrap().push(line.to_owned());
    }

    #[test]
    fn the_profile_auth_and_email_change_kinds_render_with_exactly_the_arguments_the_core_gives() {
        let t = Texts::with_log(record);
        for locale in crate::LOCALES {
            let link = render(&t, locale, "profile-link", "a@b.co", &[("link", "https://x/profile#token=T"), ("valid-minutes", "60")]).unwrap();
            assert!(link.text.contains("https://x/profile#token=T") && link.text.contains("60"), "{}", link.text);
            let notice = render(&t, locale, "passphrase-changed", "a@b.co", &[("link", "https://x/profile")]).unwrap();
            assert!(notice.text.contains("https://x/profile"));
            let locked = render(&t, locale, "pin-locked", "a@b.co", &[("link", "https://x/profile"), ("pin", "123456")]).unwrap();
            assert!(locked.text.contains("https://x/profile") && locked.text.contains("123456"), "{}", locked.text);
            for kind in CODE_KINDS {
                let code = render(&t, locale, kind, "a@b.co", &[("code", "123456"), ("valid-minutes", "10")]).unwrap();
                assert!(code.text.contains("123456") && code.text.contains("10"), "{}", code.text);
            }
            let changed = render(&t, locale, "email-changed", "old@b.co", &[("new-email", "n***@example.com"), ("link", "https://x/profile")]).unwrap();
            assert!(changed.text.contains("https://x/profile") && changed.text.contains("n***@example.com"), "{}", changed.text);
            assert!(digit_runs(&changed.text).is_empty(), "{}", changed.text);
        }
        assert_eq!(*PROBLEMS.lock().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn unknown_kinds_are_an_error() {
        assert!(render(&Texts::new(), "en", "nope", "a@b.co", &[]).is_err());
    }
}
