//! Browser pages. Self-contained: inline script and style allowed by their hashes in a strict CSP,
//! no third-party assets, the token read from the URL fragment (never sent to the server by the browser).

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{Ctx, Failure, Request, Response};

const VERIFY_SCRIPT: &str = r#"
const out = document.getElementById('result');
const button = document.getElementById('confirm');
const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token');
const pin = params.get('pin');
if (pin && /^[0-9]{4,12}$/.test(pin)) {
  document.getElementById('pin').textContent = pin;
  document.getElementById('pin-check').hidden = false;
}
if (!token) { button.disabled = true; out.textContent = out.dataset.missing; out.className = 'error'; }
button.addEventListener('click', async () => {
  button.disabled = true;
  out.className = '';
  out.textContent = out.dataset.working;
  try {
    const r = await fetch('/api/signup/verify', {
      method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(pin ? {token, pin} : {token}),
    });
    const j = await r.json();
    out.textContent = j.message + (j.instructions ? ' ' + j.instructions : '');
    out.className = r.ok ? 'ok' : 'error';
    if (r.ok) { history.replaceState(null, '', location.pathname); }
  } catch (e) {
    out.textContent = out.dataset.failed; out.className = 'error'; button.disabled = false;
  }
});
"#;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}\
button{font-size:1.1rem;padding:.6rem 1.4rem;cursor:pointer}\
.ok{color:#14622e}.error{color:#9b1c1c}.pin{font-size:1.4rem;letter-spacing:.1em}";

/// `GET /signup/verify#token=…`: asks for one click before it verifies, so link scanners that
/// prefetch the URL verify no one.
pub fn verify(ctx: &Ctx<'_>, _: &Request, locale: &str) -> Result<Response, Failure> {
    let t = |id: &str| escape(&ctx.l10n.format(locale, id, &[]));
    let body = format!(
        "<!doctype html><html lang=\"{locale}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title><style>{STYLE}</style></head>\
<body><main><h1>{title}</h1><p>{intro}</p>\
<div id=\"pin-check\" hidden><p>{pin_intro} <strong id=\"pin\" class=\"pin\"></strong></p><p>{pin_check}</p></div>\
<button id=\"confirm\" type=\"button\">{button}</button>\
<p id=\"result\" role=\"status\" aria-live=\"polite\" data-missing=\"{missing}\" data-working=\"{working}\" data-failed=\"{failed}\"></p>\
</main><script>{VERIFY_SCRIPT}</script></body></html>",
        title = t("page-verify-title"),
        intro = t("page-verify-intro"),
        pin_intro = t("page-verify-pin-intro"),
        pin_check = t("page-verify-pin-check"),
        button = t("page-verify-button"),
        missing = t("page-verify-missing-token"),
        working = t("page-verify-working"),
        failed = t("page-verify-failed"),
    );
    Ok(html(body, Some(VERIFY_SCRIPT)))
}

/// `GET /privacy`: the privacy policy a GPT must link to, in the browser's language.
pub fn privacy(ctx: &Ctx<'_>, _: &Request, locale: &str) -> Result<Response, Failure> {
    let t = |id: &str| escape(&ctx.l10n.format(locale, id, &[]));
    let version = escape(&ctx.l10n.format(locale, "page-privacy-version", &[("version", &ctx.settings.policy_version)]));
    let paragraphs: String = ["page-privacy-collect", "page-privacy-why", "page-privacy-mail", "page-privacy-retention", "page-privacy-rights"]
        .iter()
        .map(|id| format!("<p>{}</p>", t(id)))
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"{locale}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title><style>{STYLE}</style></head>\
<body><main><h1>{title}</h1><p>{version}</p>{paragraphs}</main></body></html>",
        title = t("page-privacy-title"),
    );
    Ok(html(body, None))
}

fn html(body: String, script: Option<&str>) -> Response {
    let script_src = script.map(|s| format!("'{}'", sha256_source(s))).unwrap_or_else(|| "'none'".into());
    let csp = format!(
        "default-src 'none'; script-src {script_src}; style-src '{}'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        sha256_source(STYLE)
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

fn sha256_source(content: &str) -> String {
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(content.as_bytes())))
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
