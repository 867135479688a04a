// The verify page (GET /signup/verify#token=…&pin=…&lang=…), after lang.js in one script: one
// click verifies, so link scanners that prefetch the URL verify no one. The PIN from the fragment
// is shown for the reader to check.
const out = document.getElementById('result');
const button = document.getElementById('confirm');
const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token');
const pin = params.get('pin');
// A sign-up on the OAuth authorize page: the authorization this link finishes.
const oauth = params.get('oauth');
if (pin && /^[0-9]{4,12}$/.test(pin)) {
  document.getElementById('pin').textContent = pin;
  document.getElementById('pin-check').hidden = false;
}
if (!token) { button.disabled = true; }
// Texts are written once the page speaks the link's language (lang.js).
ready.then(() => { if (!token) { out.textContent = out.dataset.missing; out.className = 'error'; } });
button.addEventListener('click', async () => {
  button.disabled = true;
  await ready;
  out.className = '';
  out.textContent = out.dataset.working;
  try {
    const r = await fetch('/api/signup/verify', {
      method: 'POST',
      headers: {'Content-Type': 'application/json', 'Accept-Language': document.documentElement.lang},
      body: JSON.stringify(Object.assign({token}, pin ? {pin} : {}, oauth ? {oauth} : {})),
    });
    const j = await r.json();
    out.textContent = j.message + (j.instructions ? ' ' + j.instructions : '');
    out.className = r.ok ? 'ok' : 'error';
    if (r.ok) { history.replaceState(null, '', location.pathname); }
    // On to the consent step of the authorization this sign-up began (our own page only).
    if (r.ok && typeof j.continue === 'string' && j.continue.startsWith(location.origin + '/oauth/authorize?')) {
      location.assign(j.continue);
    }
  } catch (e) {
    out.textContent = out.dataset.failed; out.className = 'error'; button.disabled = false;
  }
});
