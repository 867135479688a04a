//! Browser pages. Self-contained: inline script and style allowed by their hashes in a strict CSP,
//! no third-party assets, the token read from the URL fragment (never sent to the server by the browser).

mod email_change;

use email_change::{EMAIL_CHANGE_SCRIPT, email_change_section};

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

/// The profile page: editor with `#token=…` in the fragment, recovery ("send me a link")
/// without. The fragment leaves the address bar as soon as it is read, so the token does not
/// linger in history or get copied along with the URL.
const PROFILE_SCRIPT: &str = r#"
const $ = (id) => document.getElementById(id);
const out = $('result');
const editor = $('profile');
const save = $('save');
const rule = $('passphrase-rule');
const show = (el, text, ok) => { el.textContent = text; el.className = ok ? 'ok' : 'error'; };
const said = (j) => (j.message || '') + (j.instructions ? ' ' + j.instructions : '');
async function post(path, body) {
  const r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  let j = {};
  try { j = await r.json(); } catch (e) { j = {}; }
  return [r.status, j, Number(r.headers.get('Retry-After')) || 0];
}
// The token leaves the address bar at once; this tab keeps it, so a reload still knows the link
// (and says it is used once it is). A finished email change replaces it with the fresh one.
const linked = new URLSearchParams(location.hash.slice(1)).get('token');
if (linked) { sessionStorage.setItem('profile-token', linked); }
let token = linked || sessionStorage.getItem('profile-token');
if (location.hash) { history.replaceState(null, '', location.pathname + location.search); }
function gone() {
  sessionStorage.removeItem('profile-token');
  editor.hidden = true;
  show(out, out.dataset.expired, false);
  $('recovery').hidden = false;
}
async function load() {
  out.className = '';
  out.textContent = out.dataset.loading;
  try {
    const [status, j] = await post('/api/profile/load', {token});
    if (status === 410) { gone(); return; }
    if (status !== 200) { show(out, said(j) || out.dataset.failed, false); return; }
    $('pin').textContent = j.pin;
    $('email').textContent = j.email;
    const verified = $('verified');
    verified.textContent = j.email_verified ? verified.dataset.yes : verified.dataset.no;
    const state = $('status');
    state.textContent = state.dataset[j.status] || j.status;
    $('created').textContent = j.created_at;
    $('created').dateTime = j.created_at;
    $('locale').value = j.locale;
    out.textContent = '';
    out.className = '';
    editor.hidden = false;
    save.disabled = false;
    $('email-change').hidden = false;
  } catch (e) {
    show(out, out.dataset.failed, false);
  }
}
save.addEventListener('click', async () => {
  const first = $('passphrase').value;
  if (first !== $('passphrase2').value) { show(out, out.dataset.mismatch, false); return; }
  const body = {token, locale: $('locale').value};
  if (first) {
    const length = [...first.normalize('NFKC')].length;
    if (length < Number(rule.dataset.min)) { show(out, rule.dataset.short, false); return; }
    if (length > Number(rule.dataset.max)) { show(out, rule.dataset.long, false); return; }
    body.passphrase = first;
  }
  save.disabled = true;
  out.className = '';
  out.textContent = out.dataset.saving;
  try {
    const [status, j] = await post('/api/profile/save', body);
    if (status === 410) { gone(); return; }
    if (status === 200) {
      show(out, j.message, true);
      $('passphrase').value = '';
      $('passphrase2').value = '';
      for (const el of editor.querySelectorAll('input, select')) { el.disabled = true; }
      // The save used the link, so an email change could not be authorised with it any more.
      $('email-change').hidden = true;
      if (j.locale) { document.documentElement.lang = j.locale; }
      return;
    }
    show(out, said(j) || out.dataset.failed, false);
    save.disabled = status === 403;
  } catch (e) {
    show(out, out.dataset.failed, false);
    save.disabled = false;
  }
});
const recoveryEmail = $('recovery-email');
const recoverySend = $('recovery-send');
const recoveryOut = $('recovery-result');
recoverySend.addEventListener('click', async () => {
  recoverySend.disabled = true;
  recoveryOut.className = '';
  recoveryOut.textContent = recoveryOut.dataset.sending;
  try {
    const [status, j] = await post('/api/profile/request', {email: recoveryEmail.value});
    show(recoveryOut, said(j) || recoveryOut.dataset.failed, status === 200);
  } catch (e) {
    show(recoveryOut, recoveryOut.dataset.failed, false);
  }
  recoverySend.disabled = false;
});
recoveryEmail.addEventListener('keydown', (e) => { if (e.key === 'Enter') { recoverySend.click(); } });
"#;

/// Runs last, once every part of the profile page's script has set up its listeners.
const PROFILE_START: &str = r#"
if (token) { load(); } else { $('recovery').hidden = false; }
"#;

/// One stylesheet for every page (its hash is in every page's CSP).
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}\
button{font-size:1.1rem;padding:.6rem 1.4rem;cursor:pointer;margin-top:1rem}\
label{display:block;margin-top:1rem}input,select{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dd{margin:0}.rule{font-size:.9rem;color:#555}\
.ok{color:#14622e}.error{color:#9b1c1c}.pin{font-size:1.4rem;letter-spacing:.1em}\
button+button{margin-left:.6rem}button:disabled{cursor:default}\
input.code{font-family:ui-monospace,monospace;font-size:1.6rem;letter-spacing:.3em;max-width:10ch;margin-right:.6rem}\
#email-change{margin-top:2rem;border-top:1px solid #ccc}";

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

/// `GET /profile`: the editor (token in the fragment) or the recovery form (no token). Texts are
/// in the browser's language; the length rule comes from the settings the API checks against.
pub fn profile(ctx: &Ctx<'_>, _: &Request, locale: &str) -> Result<Response, Failure> {
    let t = |id: &str| escape(&ctx.l10n.format(locale, id, &[]));
    let (min, max) = (ctx.settings.passphrase_min.to_string(), ctx.settings.passphrase_max.to_string());
    let with_lengths = |id: &str| escape(&ctx.l10n.format(locale, id, &[("min", &min), ("max", &max)]));
    let minutes = (super::profile_init::PROFILE_TTL_MS / 60_000).to_string();
    let recovery_intro = escape(&ctx.l10n.format(locale, "page-profile-recovery-intro", &[("minutes", &minutes)]));
    let script = format!("{PROFILE_SCRIPT}{EMAIL_CHANGE_SCRIPT}{PROFILE_START}");
    let body = format!(
        "<!doctype html><html lang=\"{locale}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title><style>{STYLE}</style></head>\
<body><main><h1>{title}</h1>\
<section id=\"profile\" hidden><p>{intro}</p><dl>\
<dt>{pin}</dt><dd id=\"pin\" class=\"pin\"></dd>\
<dt>{email}</dt><dd id=\"email\"></dd>\
<dt>{verified}</dt><dd id=\"verified\" data-yes=\"{yes}\" data-no=\"{no}\"></dd>\
<dt>{status}</dt><dd id=\"status\" data-active=\"{active}\" data-pending=\"{pending}\" data-blocked=\"{blocked}\"></dd>\
<dt>{created}</dt><dd><time id=\"created\"></time></dd></dl>\
<label for=\"locale\">{locale_label}</label>\
<select id=\"locale\"><option value=\"en\">{en}</option><option value=\"ru\">{ru}</option></select>\
<label for=\"passphrase\">{passphrase}</label><input id=\"passphrase\" type=\"password\" autocomplete=\"new-password\">\
<label for=\"passphrase2\">{passphrase2}</label><input id=\"passphrase2\" type=\"password\" autocomplete=\"new-password\">\
<p id=\"passphrase-rule\" class=\"rule\" data-min=\"{min}\" data-max=\"{max}\" data-short=\"{short}\" data-long=\"{long}\">{rule}</p>\
<button id=\"save\" type=\"button\" disabled>{save}</button>\
{email_change}</section>\
<p id=\"result\" role=\"status\" aria-live=\"polite\" data-loading=\"{loading}\" data-saving=\"{saving}\" \
data-mismatch=\"{mismatch}\" data-expired=\"{expired}\" data-failed=\"{failed}\"></p>\
<section id=\"recovery\" hidden><h2>{recovery_title}</h2><p>{recovery_intro}</p>\
<label for=\"recovery-email\">{recovery_email}</label><input id=\"recovery-email\" type=\"email\" autocomplete=\"email\" maxlength=\"254\">\
<button id=\"recovery-send\" type=\"button\">{recovery_send}</button>\
<p id=\"recovery-result\" role=\"status\" aria-live=\"polite\" data-sending=\"{sending}\" data-failed=\"{failed}\"></p></section>\
</main><script>{script}</script></body></html>",
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
        recovery_email = t("page-profile-recovery-email"),
        recovery_send = t("page-profile-recovery-send"),
        sending = t("page-profile-recovery-sending"),
        email_change = email_change_section(ctx, locale),
    );
    Ok(html(body, Some(&script)))
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
