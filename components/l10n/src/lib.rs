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

use std::collections::HashSet;
use std::sync::{Mutex, RwLock};

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};

pub use email::RenderedEmail;

/// Supported locales; the first is the fallback.
pub const LOCALES: [&str; 2] = ["en", "ru"];

const SOURCES: [(&str, &str); 2] = [("en", include_str!("../locales/en.ftl")), ("ru", include_str!("../locales/ru.ftl"))];

/// The texts of every locale. Cheap to create: nothing is parsed until a message is formatted,
/// and then only that message (issue 10: on Spin every request is a fresh instance, so parsing
/// whole bundles up front was paid per request, even by requests that format nothing). Parsed
/// messages stay in their locale's bundle for the life of the `Texts`, so a long-lived host
/// parses each message once.
pub struct Texts {
    locales: Vec<Locale>,
    /// Where formatting problems are reported; see [`Texts::with_log`].
    log: fn(&str),
    /// Problems already reported: each distinct one is logged once, not on every request.
    reported: Mutex<HashSet<String>>,
}

/// One locale: its Fluent source and the bundle of the messages parsed from it so far.
struct Locale {
    tag: &'static str,
    source: &'static str,
    bundle: RwLock<FluentBundle<FluentResource>>,
}

impl Locale {
    fn new(tag: &'static str, source: &'static str) -> Self {
        let mut bundle = FluentBundle::new_concurrent(vec![tag.parse().expect("static locale tags parse")]);
        // No Unicode isolation marks: texts go into JSON, plain-text mail and HTML.
        bundle.set_use_isolating(false);
        Self { tag, source, bundle: RwLock::new(bundle) }
    }
}

/// The Fluent source of message `id` in `source`: its first line (`id = …` at the start of a
/// line) and the lines that continue it: indented or blank ones, and a `}` at column 0 closing a
/// multi-line placeable (Fluent's parser accepts it there). Fluent starts every entry (message,
/// term, comment) at column 0 with a letter, `-` or `#`, so the entry ends before the next line
/// that starts with anything else. `None` if `source` has no such message.
fn entry<'s>(source: &'s str, id: &str) -> Option<&'s str> {
    let mut from = 0;
    let start = loop {
        let at = from + source[from..].find(id)?;
        let line_start = at == 0 || source.as_bytes()[at - 1] == b'\n';
        let rest = source[at + id.len()..].trim_start_matches(' ');
        if line_start && rest.starts_with('=') {
            break at;
        }
        from = at + id.len();
    };
    let mut end = source.len();
    let mut offset = start + source[start..].find('\n').map_or(source.len() - start, |n| n + 1);
    while offset < source.len() {
        let line_end = source[offset..].find('\n').map_or(source.len(), |n| offset + n + 1);
        let line = &source[offset..line_end];
        if !(line.trim().is_empty() || line.starts_with([' ', '\t', '}'])) {
            end = offset;
            break;
        }
        offset = line_end;
    }
    Some(&source[start..end])
}

/// The default log: standard error, which is the log on Spin (and a plain line on the host).
fn log_to_stderr(line: &str) {
    eprintln!("{line}");
}

impl Default for Texts {
    fn default() -> Self {
        Self::new()
    }
}

impl Texts {
    pub fn new() -> Self {
        Self::with_log(log_to_stderr)
    }

    /// Like [`Texts::new`], reporting formatting problems (a missing argument, an unknown
    /// reference, a message that does not parse) through `log`, once each. A report names the
    /// message, the locale and the problem — Fluent's errors name variables, never their
    /// values, which may hold tokens.
    pub fn with_log(log: fn(&str)) -> Self {
        let locales = SOURCES.iter().map(|(tag, source)| Locale::new(tag, source)).collect();
        Self { locales, log, reported: Mutex::new(HashSet::new()) }
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

    fn locale(&self, tag: &str) -> &Locale {
        self.locales.iter().find(|l| l.tag == tag).unwrap_or(&self.locales[0])
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
        [self.locale(locale), self.locale(LOCALES[0])].into_iter().find_map(|locale| self.format_in(locale, id, &fluent_args))
    }

    /// Formats `id` with `locale`'s bundle, adding the message to it first if this is its first use.
    fn format_in(&self, locale: &Locale, id: &str, args: &FluentArgs) -> Option<String> {
        // A poisoned lock only means a panic elsewhere while it was held; the bundle is whole:
        // `add_resource` is the only change and it is not interrupted by our code.
        let read = locale.bundle.read().unwrap_or_else(|e| e.into_inner());
        if read.has_message(id) {
            return self.format_with(&read, locale.tag, id, args);
        }
        drop(read);
        let source = entry(locale.source, id)?;
        let mut write = locale.bundle.write().unwrap_or_else(|e| e.into_inner());
        if !write.has_message(id) {
            let resource = FluentResource::try_new(source.to_owned()).unwrap_or_else(|(resource, errors)| {
                for error in errors {
                    self.report(format!("gpt-user-l10n: parsing {id:?} ({}): {error:?}", locale.tag));
                }
                resource
            });
            if let Err(errors) = write.add_resource(resource) {
                for error in errors {
                    self.report(format!("gpt-user-l10n: adding {id:?} ({}): {error}", locale.tag));
                }
            }
        }
        self.format_with(&write, locale.tag, id, args)
    }

    fn format_with(&self, bundle: &FluentBundle<FluentResource>, tag: &str, id: &str, args: &FluentArgs) -> Option<String> {
        let pattern = bundle.get_message(id)?.value()?;
        let mut errors = vec![];
        let text = bundle.format_pattern(pattern, Some(args), &mut errors).into_owned();
        for error in errors {
            self.report(format!("gpt-user-l10n: formatting {id:?} ({tag}): {error}"));
        }
        Some(text)
    }

    /// Logs `line` unless it was logged before.
    fn report(&self, line: String) {
        // A poisoned set only means a panic elsewhere mid-insert; the set itself is still usable.
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        if !reported.contains(&line) {
            (self.log)(&line);
            reported.insert(line);
        }
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

    /// The message ids of a `.ftl` source, in order.
    fn ids(source: &str) -> Vec<&str> {
        source.lines().filter_map(|l| l.split_once(" = ").map(|(id, _)| id.trim())).filter(|id| !id.starts_with('#')).collect()
    }

    #[test]
    fn every_message_exists_in_every_locale() {
        assert_eq!(ids(SOURCES[0].1), ids(SOURCES[1].1), "en.ftl and ru.ftl must define the same ids in the same order");
    }

    /// Every `$variable` the source of a message mentions.
    fn variables(source: &str) -> Vec<&str> {
        source.split("{ $").skip(1).filter_map(|rest| rest.split([' ', '}']).next()).collect()
    }

    #[test]
    fn each_message_parsed_alone_formats_as_in_the_whole_file() {
        for (tag, source) in SOURCES {
            let mut whole = FluentBundle::new_concurrent(vec![tag.parse().unwrap()]);
            whole.set_use_isolating(false);
            whole.add_resource(FluentResource::try_new(source.to_owned()).unwrap()).unwrap();
            let ids = ids(source);
            assert!(ids.len() > 100, "{tag}: {} messages", ids.len());
            let texts = Texts::with_log(|line| panic!("{line}"));
            let locale = texts.locale(tag);
            for id in ids {
                let alone = entry(source, id).unwrap_or_else(|| panic!("{tag}: no entry {id}"));
                let parsed = FluentResource::try_new(alone.to_owned()).unwrap_or_else(|(_, e)| panic!("{tag}/{id} alone: {e:?}"));
                assert_eq!(parsed.entries().count(), 1, "{tag}/{id} alone is one entry: {alone:?}");
                let mut args = FluentArgs::new();
                for name in variables(alone) {
                    args.set(name, format!("<{name}>"));
                }
                let expected = whole.format_pattern(whole.get_message(id).unwrap().value().unwrap(), Some(&args), &mut vec![]).into_owned();
                assert_eq!(texts.format_in(locale, id, &args).as_deref(), Some(expected.as_str()), "{tag}/{id}");
            }
        }
    }

    #[test]
    fn entries_are_found_by_whole_id_at_the_start_of_a_line_only() {
        let source = "# a-b = comment\na = one\na-b = two\n  continued\n\n  after a blank\nc=three { $x ->\n  *[y] z\n}\nd = four";
        assert_eq!(entry(source, "a"), Some("a = one\n"));
        assert_eq!(entry(source, "a-b"), Some("a-b = two\n  continued\n\n  after a blank\n"));
        assert_eq!(entry(source, "c"), Some("c=three { $x ->\n  *[y] z\n}\n"));
        assert_eq!(entry(source, "d"), Some("d = four"));
        assert_eq!(entry(source, "b"), None);
        assert_eq!(entry(source, "continued"), None);
    }

    #[test]
    fn nothing_is_parsed_until_used_and_then_only_the_message_used() {
        let t = Texts::new();
        assert_eq!(t.negotiate("ru"), "ru");
        let parsed = |tag: &str, id: &str| t.locale(tag).bundle.read().unwrap().has_message(id);
        assert!(!parsed("en", "error-not-found") && !parsed("ru", "error-not-found"));
        assert_eq!(t.format("ru", "error-not-found", &[]), "По этому адресу ничего нет.");
        assert!(parsed("ru", "error-not-found"));
        assert!(!parsed("en", "error-not-found"), "no fallback needed, English untouched");
        assert!(!parsed("ru", "error-invalid-json"), "only the message used");
        // Formatting it again uses the parsed message.
        assert_eq!(t.format("ru", "error-not-found", &[]), "По этому адресу ничего нет.");
    }

    #[test]
    fn formats_with_arguments_and_without_isolation_marks() {
        let t = Texts::new();
        let s = t.format("ru", "error-invalid-input", &[("field", "email"), ("reason", "x")]);
        assert_eq!(s, "Поле «email» заполнено неверно: x");
        assert_eq!(t.format("xx", "error-not-found", &[]), "There is nothing at this address.");
        assert_eq!(t.format("en", "no-such-id", &[]), "no-such-id");
    }

    static EMAIL_CHANGE_PROBLEMS: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn email_change_problem(line: &str) {
        EMAIL_CHANGE_PROBLEMS.lock().unwrap().push(line.to_owned());
    }

    #[test]
    fn the_email_change_messages_exist_in_every_locale_with_the_arguments_the_core_gives() {
        let t = Texts::with_log(email_change_problem);
        let messages: [(&str, &[(&str, &str)]); 23] = [
            ("error-flow-not-found", &[]),
            ("instructions-flow-not-found", &[]),
            ("error-flow-expired", &[]),
            ("instructions-flow-expired", &[]),
            ("error-wrong-step", &[("state", "enter_new")]),
            ("instructions-wrong-step", &[]),
            ("error-invalid-code", &[("attempts", "3")]),
            ("instructions-invalid-code", &[]),
            ("error-flow-dead", &[]),
            ("instructions-flow-dead", &[]),
            ("error-code-expired", &[]),
            ("instructions-code-expired", &[]),
            ("error-too-many-codes", &[]),
            ("instructions-too-many-codes", &[]),
            ("error-email-taken", &[]),
            ("instructions-email-taken", &[]),
            ("invalid-same-email", &[]),
            ("invalid-code-format", &[]),
            ("email-change-sent-current", &[("to", "a***@example.com")]),
            ("email-change-sent-new", &[("to", "n***@example.com")]),
            ("email-change-confirmed-current", &[]),
            ("email-change-available", &[]),
            ("email-change-done", &[("email", "new@example.com")]),
        ];
        for locale in LOCALES {
            for (id, args) in messages {
                let text = t.try_format(locale, id, args).unwrap_or_else(|| panic!("{id} is missing in {locale}"));
                // `$state` picks the words (checked below); every other argument is shown.
                for (_, value) in args.iter().filter(|(name, _)| *name != "state") {
                    assert!(text.contains(value), "{locale}/{id} shows {value}: {text}");
                }
            }
            // The state is named in words, not by its snake_case id.
            for state in ["confirm_current", "enter_new", "confirm_new", "done", "dead"] {
                let text = t.format(locale, "error-wrong-step", &[("state", state)]);
                assert!(!text.contains(state), "{locale}: {text}");
            }
        }
        assert_eq!(t.format("ru", "error-invalid-code", &[("attempts", "0")]), "Код неверный. Осталось попыток: 0.");
        assert_eq!(*EMAIL_CHANGE_PROBLEMS.lock().unwrap(), Vec::<String>::new());
    }

    static LOGGED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn capture(line: &str) {
        LOGGED.lock().unwrap().push(line.to_owned());
    }

    #[test]
    fn a_missing_argument_is_logged_once_by_id_without_argument_values() {
        let t = Texts::with_log(capture);
        // `error-throttled` needs `$seconds`; the argument given instead must not be logged.
        let args = [("link", "https://x/profile#token=SECRET-TOKEN")];
        let first = t.format("en", "error-throttled", &args);
        let second = t.format("en", "error-throttled", &args);
        assert_eq!(first, second, "the text is still produced");
        let logged: Vec<String> = LOGGED.lock().unwrap().iter().filter(|l| l.contains("error-throttled")).cloned().collect();
        assert_eq!(logged.len(), 1, "logged once, not per call: {logged:?}");
        assert!(logged[0].contains("seconds"), "names the missing variable: {}", logged[0]);
        assert!(!logged.concat().contains("SECRET-TOKEN"));
        // A complete call reports nothing.
        t.format("en", "error-throttled", &[("seconds", "5")]);
        assert_eq!(LOGGED.lock().unwrap().len(), 1);
    }
}
