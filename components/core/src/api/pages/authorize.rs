//! The OAuth authorize page (SPEC §2.5) and the page that refuses a request it cannot serve.
//! Markup in `authorize.html` and `authorize_error.html`; the script is `authorize.js` (no
//! `lang.js`: the page speaks the browser's language, there is no link naming another).

use super::{AUTHORIZE_SCRIPT, AUTHORIZE_SCRIPT_CSP, STYLE, escape, html};
use crate::api::{Ctx, Response};

/// `GET /oauth/authorize` once the client and its redirect URI are known good: sign in, then
/// allow or deny. `client` (the client's name) and `redirect_host` are raw text, escaped here; the
/// script reads the authorization parameters from the address bar itself.
pub fn authorize_page(ctx: &Ctx<'_>, locale: &str, client: &str, redirect_host: &str) -> Response {
    let t = |id: &str| escape(&ctx.l10n.format(locale, id, &[]));
    let (min, max) = (ctx.settings.passphrase_min.to_string(), ctx.settings.passphrase_max.to_string());
    let client = format!("<strong>{}</strong>", escape(client));
    let host = format!("<strong>{}</strong>", escape(redirect_host));
    let body = format!(
        include_str!("authorize.html"),
        locale = locale,
        style = STYLE,
        script = AUTHORIZE_SCRIPT,
        title = t("page-authorize-title"),
        intro = marked(ctx, locale, "page-authorize-intro", &[("client", client.as_str()), ("host", host.as_str())]),
        email = t("page-authorize-email"),
        passphrase = t("page-authorize-passphrase"),
        sign_in = t("page-authorize-sign-in"),
        signing_in = t("page-authorize-signing-in"),
        consent_title = t("page-authorize-consent-title"),
        // The script writes the signed-in address into the empty element.
        consent = marked(ctx, locale, "page-authorize-consent", &[("client", client.as_str()), ("email", r#"<strong id="consent-email"></strong>"#)]),
        consent_scope = t("page-authorize-consent-scope"),
        allow = t("page-authorize-allow"),
        deny = t("page-authorize-deny"),
        working = t("page-authorize-working"),
        redirecting = t("page-authorize-redirecting"),
        failed = t("page-authorize-failed"),
        code = t("page-authorize-code"),
        send_code = t("page-authorize-send-code"),
        sending = t("page-authorize-sending"),
        need_email = t("page-authorize-need-email"),
        new_account = t("page-authorize-new-account"),
        sign_up_title = t("page-authorize-sign-up-title"),
        new_passphrase = escape(&ctx.l10n.format(locale, "page-authorize-new-passphrase", &[("min", &min), ("max", &max)])),
        new_passphrase2 = t("page-authorize-new-passphrase2"),
        consent_data = t("page-authorize-consent-data"),
        privacy = t("page-authorize-privacy"),
        create = t("page-authorize-create"),
        have_account = t("page-authorize-have-account"),
        mismatch = t("page-authorize-mismatch"),
        min = min,
        max = max,
    );
    html(body, Some(AUTHORIZE_SCRIPT_CSP))
}

/// The answer to an authorization request that names an unknown client or a redirect URI the
/// client did not register: says why (`message_id`, e.g. `page-authorize-unknown-client`) and
/// sends the reader back to their chat app. No script, and no link to the redirect URI: an
/// unchecked address is never offered (RFC 6749 §4.1.2.1).
pub fn authorize_error_page(ctx: &Ctx<'_>, locale: &str, status: u16, message_id: &str) -> Response {
    let t = |id: &str| escape(&ctx.l10n.format(locale, id, &[]));
    let body = format!(
        include_str!("authorize_error.html"),
        locale = locale,
        style = STYLE,
        title = t("page-authorize-error-title"),
        reason = t(message_id),
        go_back = t("page-authorize-go-back"),
    );
    let mut response = html(body, None);
    response.status = status;
    response
}

/// Message `id` as HTML: its text escaped, each `{ $name }` in it replaced by the markup given for
/// `name` (so a name can be emphasised, or an element left for the script, wherever the language
/// puts it). One pass from left to right: markup put in is never searched again, so a client
/// named `{email}` stays a name.
fn marked(ctx: &Ctx<'_>, locale: &str, id: &str, marks: &[(&str, &str)]) -> String {
    let holders: Vec<String> = marks.iter().map(|(name, _)| format!("{{{name}}}")).collect();
    let args: Vec<(&str, &str)> = marks.iter().zip(&holders).map(|((name, _), holder)| (*name, holder.as_str())).collect();
    let text = escape(&ctx.l10n.format(locale, id, &args));
    let mut rest = text.as_str();
    let mut out = String::with_capacity(text.len());
    loop {
        let first = marks.iter().zip(&holders).filter_map(|((_, markup), holder)| Some((rest.find(holder.as_str())?, holder, *markup)));
        let Some((at, holder, markup)) = first.min_by_key(|found| found.0) else { break };
        out.push_str(&rest[..at]);
        out.push_str(markup);
        rest = &rest[at + holder.len()..];
    }
    out.push_str(rest);
    out
}
