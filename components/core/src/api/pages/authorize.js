// The authorize page (GET /oauth/authorize?…, SPEC §2.5): sign in with email and passphrase (or
// a code emailed on request), then allow or deny the client. The authorization request stays in the address bar: each step sends
// its parameters back as they came, so between the steps the server keeps only the short-lived
// sign-in ticket. The CSP forbids form submission (`form-action 'none'`): every step is a fetch.
const $ = (id) => document.getElementById(id);
const out = $('result');
const form = $('sign-in');
const email = $('email');
const passphrase = $('passphrase');
const consent = $('consent');
const allow = $('allow');
const deny = $('deny');
const code = $('code');
const sendCode = $('send-code');
// Signing in with an emailed code instead of the passphrase (after "Email me a code").
let byCode = false;
const signUp = $('sign-up');
// The authorization parameters the page was opened with; an absent one is left out of the JSON.
const query = new URLSearchParams(location.search);
const request = {};
for (const name of ['response_type', 'client_id', 'redirect_uri', 'code_challenge', 'code_challenge_method', 'state', 'resource', 'scope']) {
  if (query.has(name)) { request[name] = query.get(name); }
}
// What step 1 returned: the ticket step 2 presents (10 minutes, single use).
let ticket = null;
const show = (text, ok) => { out.textContent = text; out.className = ok === undefined ? '' : (ok ? 'ok' : 'error'); };
const said = (j) => (j.message || '') + (j.instructions ? ' ' + j.instructions : '');
async function post(path, body) {
  // The answers speak the page's language (the browser's, negotiated by the server).
  const headers = {'Content-Type': 'application/json', 'Accept-Language': document.documentElement.lang};
  const r = await fetch(path, {method: 'POST', headers, body: JSON.stringify(body)});
  let j = {};
  try { j = await r.json(); } catch (e) { j = {}; }
  return [r.status, j];
}
// Nothing can be pressed twice while a request runs.
function busy(on) {
  for (const el of document.querySelectorAll('main input, main button')) { el.disabled = on; }
}
// Step 1 again (the ticket is used or expired): the email stays, the passphrase is asked again.
function signInAgain(message) {
  ticket = null;
  consent.hidden = true;
  form.hidden = false;
  busy(false);
  if (message) { show(message, false); } else { show(''); }
  passphrase.value = '';
  code.value = '';
  (email.value ? (byCode ? code : passphrase) : email).focus();
}
// "Email me a code": the answer is the same whether or not the address has an account.
sendCode.addEventListener('click', async () => {
  if (!email.value) { show(out.dataset.needEmail, false); email.focus(); return; }
  busy(true);
  show(out.dataset.sending);
  try {
    const [status, j] = await post('/api/oauth/send-code', {client_id: request.client_id, redirect_uri: request.redirect_uri, email: email.value});
    busy(false);
    if (status === 200) {
      byCode = true;
      $('passphrase-row').hidden = true;
      passphrase.required = false;
      $('code-row').hidden = false;
      code.required = true;
      show(said(j), true);
      code.focus();
      return;
    }
    show(said(j) || out.dataset.failed, false);
  } catch (err) {
    busy(false);
    show(out.dataset.failed, false);
  }
  email.focus();
});
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  busy(true);
  show(out.dataset.signingIn);
  let field = byCode ? code : passphrase;
  try {
    const secret = byCode ? {code: code.value} : {passphrase: passphrase.value};
    const [status, j] = await post('/api/oauth/sign-in', Object.assign({
      client_id: request.client_id, redirect_uri: request.redirect_uri, email: email.value,
    }, secret));
    if (status === 200 && j.ticket) {
      ticket = j.ticket;
      passphrase.value = '';
      code.value = '';
      $('consent-email').textContent = j.email || email.value;
      form.hidden = true;
      consent.hidden = false;
      busy(false);
      show('');
      allow.focus();
      return;
    }
    // A 429 message already says how long to wait; every other refusal says what is wrong.
    show(said(j) || out.dataset.failed, false);
    if (j.field === 'email') { field = email; }
  } catch (err) {
    show(out.dataset.failed, false);
  }
  busy(false);
  field.focus();
  field.select();
});
async function answer(allowed) {
  busy(true);
  show(out.dataset.working);
  try {
    const [status, j] = await post('/api/oauth/consent', Object.assign({ticket, allow: allowed}, request));
    if (status === 200 && j.redirect) {
      // Back to the client, with the code or the refusal; the buttons stay disabled.
      show(out.dataset.redirecting, true);
      location.assign(j.redirect);
      return;
    }
    if (status === 410) { signInAgain(said(j) || out.dataset.failed); return; }
    show(said(j) || out.dataset.failed, false);
  } catch (err) {
    show(out.dataset.failed, false);
  }
  busy(false);
  (allowed ? allow : deny).focus();
}
// A new person: SignUp_Init from this page; the emailed link, opened in this browser, verifies the
// account and comes back here at the consent step (ticket and address in the fragment).
$('new-account').addEventListener('click', () => {
  form.hidden = true; signUp.hidden = false; show('');
  $('su-email').value = email.value;
  ($('su-email').value ? $('su-passphrase') : $('su-email')).focus();
});
$('have-account').addEventListener('click', () => { signUp.hidden = true; form.hidden = false; show(''); email.focus(); });
signUp.addEventListener('submit', async (e) => {
  e.preventDefault();
  if ($('su-passphrase').value !== $('su-passphrase2').value) { show(out.dataset.mismatch, false); $('su-passphrase2').focus(); return; }
  busy(true);
  show(out.dataset.working);
  try {
    const [status, j] = await post('/api/oauth/sign-up', Object.assign({
      email: $('su-email').value, passphrase: $('su-passphrase').value, consent: $('su-consent').checked,
      locale: document.documentElement.lang,
    }, request));
    busy(false);
    if (status === 200 || status === 201) {
      $('su-passphrase').value = ''; $('su-passphrase2').value = '';
      for (const el of signUp.querySelectorAll('input, button')) { el.disabled = true; }
      show(said(j), true);
      return;
    }
    show(said(j) || out.dataset.failed, false);
    ($(j.field === 'email' ? 'su-email' : 'su-passphrase')).focus();
  } catch (err) {
    busy(false);
    show(out.dataset.failed, false);
  }
});
// Back from the verification link: signed in already, straight to the consent step.
const arrived = new URLSearchParams(location.hash.slice(1));
if (arrived.get('ticket')) {
  ticket = arrived.get('ticket');
  history.replaceState(null, '', location.pathname + location.search);
  $('consent-email').textContent = arrived.get('email') || '';
  form.hidden = true;
  consent.hidden = false;
  allow.focus();
}
allow.addEventListener('click', () => answer(true));
deny.addEventListener('click', () => answer(false));
// Back from the client (page restored from the back/forward cache): the ticket is spent, start over.
window.addEventListener('pageshow', (e) => { if (e.persisted) { signInAgain(''); } });
