//! Browser pages. Self-contained: inline script and style allowed by their hashes in a strict CSP,
//! no third-party assets, the token read from the URL fragment (never sent to the server by the browser).
//!
//! Each page is files next to this one: its markup a `.html` `format!` template (the `{name}`
//! placeholders are the translated texts, escaped here; a literal brace is `{{`), its script
//! `.js` files, the one stylesheet `style.css`. build.rs joins the scripts of each page and hashes
//! them for the CSP at build time.

mod authorize;
mod email_change;

pub use authorize::{authorize_error_page, authorize_page};
use email_change::email_change_section;

use super::{Ctx, Failure, Request, Response};

// The scripts and the stylesheet (`*.js`, `*.css` here) and their CSP sources, hashed at build
// time by build.rs: `STYLE`, `STYLE_CSP`, `VERIFY_SCRIPT`, `VERIFY_SCRIPT_CSP`, `PROFILE_SCRIPT`, ….
include!(concat!(env!("OUT_DIR"), "/pages.rs"));

/// `GET /signup/verify#token=…`: asks for one click before it verifies, so link scanners that
/// prefetch the URL verify no one. Markup in `verify.html`, script in `verify.js`.
pub fn verify(ctx: &Ctx<'_>, _: &Request, locale: &str) -> Result<Response, Failure> {
    let t = |id: &str| escape(&ctx.l10n.format(locale, id, &[]));
    let body = format!(
        include_str!("verify.html"),
        locale = locale,
        style = STYLE,
        script = VERIFY_SCRIPT,
        title = t("page-verify-title"),
        intro = t("page-verify-intro"),
        pin_intro = t("page-verify-pin-intro"),
        pin_check = t("page-verify-pin-check"),
        button = t("page-verify-button"),
        missing = t("page-verify-missing-token"),
        working = t("page-verify-working"),
        failed = t("page-verify-failed"),
    );
    Ok(html(body, Some(VERIFY_SCRIPT_CSP)))
}

/// `GET /profile`: the editor (token in the fragment) or the recovery form (no token). Texts are
/// in the browser's language; the length rule comes from the settings the API checks against.
/// Markup in `profile.html` (+ `email_change.html`), script in `profile.js`, `email_change.js`,
/// `profile_start.js`.
pub fn profile(ctx: &Ctx<'_>, _: &Request, locale: &str) -> Result<Response, Failure> {
    let t = |id: &str| escape(&ctx.l10n.format(locale, id, &[]));
    let (min, max) = (ctx.settings.passphrase_min.to_string(), ctx.settings.passphrase_max.to_string());
    let with_lengths = |id: &str| escape(&ctx.l10n.format(locale, id, &[("min", &min), ("max", &max)]));
    let minutes = (super::profile_init::PROFILE_TTL_MS / 60_000).to_string();
    let body = format!(
        include_str!("profile.html"),
        locale = locale,
        style = STYLE,
        script = PROFILE_SCRIPT,
        title = t("page-profile-title"),
        intro = t("page-profile-intro"),
        pin = t("page-profile-pin"),
        email = t("page-profile-email"),
        verified = t("page-profile-verified"),
        yes = t("page-profile-yes"),
        no = t("page-profile-no"),
        status = t("page-profile-status"),
        active = t("page-profile-status-active"),
        pending = t("page-profile-status-pending"),
        blocked = t("page-profile-status-blocked"),
        created = t("page-profile-created"),
        locale_label = t("page-profile-locale"),
        en = t("page-profile-locale-en"),
        ru = t("page-profile-locale-ru"),
        passphrase = t("page-profile-passphrase"),
        passphrase2 = t("page-profile-passphrase2"),
        min = min,
        max = max,
        rule = with_lengths("page-profile-passphrase-rule"),
        short = with_lengths("page-profile-passphrase-short"),
        long = with_lengths("page-profile-passphrase-long"),
        save = t("page-profile-save"),
        loading = t("page-profile-loading"),
        saving = t("page-profile-saving"),
        mismatch = t("page-profile-mismatch"),
        expired = t("page-profile-expired"),
        failed = t("page-profile-failed"),
        recovery_title = t("page-profile-recovery-title"),
        recovery_intro = escape(&ctx.l10n.format(locale, "page-profile-recovery-intro", &[("minutes", &minutes)])),
        recovery_email = t("page-profile-recovery-email"),
        recovery_send = t("page-profile-recovery-send"),
        sending = t("page-profile-recovery-sending"),
        email_change = email_change_section(ctx, locale),
    );
    Ok(html(body, Some(PROFILE_SCRIPT_CSP)))
}

/// `GET /privacy`: the privacy policy a GPT must link to, in the browser's language (`privacy.html`).
pub fn privacy(ctx: &Ctx<'_>, _: &Request, locale: &str) -> Result<Response, Failure> {
    let t = |id: &str| escape(&ctx.l10n.format(locale, id, &[]));
    let body = format!(
        include_str!("privacy.html"),
        locale = locale,
        style = STYLE,
        title = t("page-privacy-title"),
        version = escape(&ctx.l10n.format(locale, "page-privacy-version", &[("version", &ctx.settings.policy_version)])),
        collect = t("page-privacy-collect"),
        why = t("page-privacy-why"),
        mail = t("page-privacy-mail"),
        retention = t("page-privacy-retention"),
        rights = t("page-privacy-rights"),
    );
    Ok(html(body, None))
}

/// A page's answer: `script_src` is the CSP source of its one inline script (build-time hash).
fn html(body: String, script_src: Option<&str>) -> Response {
    let csp = format!(
        "default-src 'none'; script-src {}; style-src {STYLE_CSP}; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        script_src.unwrap_or("'none'"),
    );
    Response {
        status: 200,
        headers: vec![
            ("content-type".into(), "text/html; charset=utf-8".into()),
            ("content-security-policy".into(), csp),
            ("cache-control".into(), "no-store".into()),
            ("x-frame-options".into(), "DENY".into()),
        ],
        body: body.into_bytes(),
    }
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
