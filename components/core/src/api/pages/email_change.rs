//! The email-change part of the profile page (SPEC §2.3): its markup (`email_change.html`); its
//! script is `email_change.js`, part of the profile page's one script (build.rs).

use super::escape;
use crate::api::Ctx;

/// The email-change part of the profile page (`email_change.html`): hidden until the profile
/// loaded, one step shown at a time by `email_change.js`. Texts that count down are templates: the
/// script puts the number where the `{n}` / `{t}` placeholder is.
pub(super) fn email_change_section(ctx: &Ctx<'_>, locale: &str) -> String {
    let t = |id: &str| escape(&ctx.l10n.format(locale, id, &[]));
    let template = |id: &str, arg: &str, placeholder: &str| escape(&ctx.l10n.format(locale, id, &[(arg, placeholder)]));
    format!(
        include_str!("email_change.html"),
        title = t("page-email-change-title"),
        intro = t("page-email-change-intro"),
        start = t("page-email-change-start"),
        working = t("page-email-change-working"),
        code = t("page-email-change-code"),
        confirm = t("page-email-change-confirm"),
        resend = t("page-email-change-resend"),
        new_email = t("page-email-change-new-email"),
        request_new = t("page-email-change-request-new"),
        code_new = t("page-email-change-code-new"),
        resend_in = template("page-email-change-resend-in", "seconds", "{n}"),
        window = template("page-email-change-window", "time", "{t}"),
        window_over = t("page-email-change-window-over"),
        failed = t("page-email-change-failed"),
    )
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};

    use crate::api::tests::World;
    use crate::api::{Request, Response};

    fn profile_page(accept_language: &str) -> (Response, String) {
        let r = World::new().send(&Request {
            method: "GET".into(),
            path: "/profile".into(),
            headers: vec![("accept-language".into(), accept_language.into())],
            body: Vec::new(),
            body_too_large: false, query: String::new(),
        });
        let html = String::from_utf8_lossy(&r.body).into_owned();
        (r, html)
    }

    #[test]
    fn the_profile_page_has_the_email_change_steps_with_the_ids_the_browser_test_drives() {
        let (r, html) = profile_page("en");
        assert_eq!(r.status, 200);
        let section = html.split(r#"<section id="email-change" hidden>"#).nth(1).expect("a hidden email-change section");
        let section = section.split("</section>").next().unwrap();
        for id in [
            "ec-start", "ec-status", "ec-code", "ec-confirm", "ec-resend", "ec-countdown", "ec-new-email", "ec-check-result",
            "ec-request-new", "ec-code-new", "ec-confirm-new", "ec-resend-new", "ec-window", "ec-done", "ec-error", "ec-instructions",
        ] {
            assert!(section.contains(&format!("id=\"{id}\"")), "#{id} missing");
        }
        for code in ["ec-code", "ec-code-new"] {
            assert!(section.contains(&format!("<input id=\"{code}\" class=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\"")), "{code}");
        }
        assert!(section.contains(r#"<button id="ec-resend" type="button" disabled>"#) && section.contains(r#"<button id="ec-resend-new" type="button" disabled>"#));
        assert!(section.contains(r#"<p id="ec-error" class="error" role="alert""#) && section.contains(r#"<p id="ec-check-result" role="alert">"#));
        assert!(section.contains("data-template=\"en:page-email-change-resend-in(seconds={n})\""), "{section}");
        assert!(section.contains("data-template=\"en:page-email-change-window(time={t})\""), "{section}");
        assert!(html.find(r#"<section id="profile" hidden>"#) < html.find(r#"<section id="email-change""#), "inside the profile editor");
    }

    #[test]
    fn the_email_change_script_is_part_of_the_one_hashed_script_and_uses_every_step() {
        let (r, html) = profile_page("ru-RU,ru");
        assert!(html.contains("ru:page-email-change-start()") && html.contains("ru:page-email-change-title()"));
        assert_eq!(html.matches("<script").count(), 1);
        let script = html.split("<script>").nth(1).unwrap().split("</script>").next().unwrap();
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
        assert!(r.header("content-security-policy").unwrap().contains(&format!("script-src 'sha256-{hash}';")));
        for step in ["start", "resend", "confirm-current", "check", "request-new", "confirm-new"] {
            assert!(script.contains(&format!("'/api/email-change/{step}'")), "{step}");
        }
        assert!(script.contains("sessionStorage.setItem('profile-token', token)"), "the fresh token replaces the old one");
        assert!(script.trim_end().ends_with("ready.then(() => { if (token) { load(); } else { $('recovery').hidden = false; } });"), "the page starts once everything listens");
        let markup = html.replace(script, "").to_ascii_lowercase();
        assert!(!markup.contains("style=") && !markup.contains(" onclick") && !markup.contains(" onchange"), "the CSP allows no inline styles or handlers");
    }
}
