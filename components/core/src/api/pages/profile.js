// The profile page: the editor with `#token=…` in the fragment, the recovery form ("send me a
// link") without. The fragment leaves the address bar as soon as it is read, so the token does
// not linger in history or get copied along with the URL. One hashed script: lang.js, this,
// email_change.js, profile_start.js.
const $ = (id) => document.getElementById(id);
const out = $('result');
const editor = $('profile');
const save = $('save');
const rule = $('passphrase-rule');
const show = (el, text, ok) => { el.textContent = text; el.className = ok ? 'ok' : 'error'; };
const said = (j) => (j.message || '') + (j.instructions ? ' ' + j.instructions : '');
async function post(path, body) {
  // The answers speak the page's language: the account's when the link named it (lang.js).
  const headers = {'Content-Type': 'application/json', 'Accept-Language': document.documentElement.lang};
  const r = await fetch(path, {method: 'POST', headers, body: JSON.stringify(body)});
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
// A time in the reader's format and the page's language; the raw value if it cannot be read.
function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) { return iso; }
  try {
    return new Intl.DateTimeFormat(document.documentElement.lang, {dateStyle: 'long', timeStyle: 'short'}).format(date);
  } catch (e) {
    return iso;
  }
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
    $('created').textContent = when(j.created_at);
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
      if (j.locale) { document.documentElement.lang = j.locale; rememberLang(j.locale); }
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
