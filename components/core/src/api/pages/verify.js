// The verify page (GET /signup/verify#token=…&pin=…&lang=…), after lang.js in one script: one
// click verifies, so link scanners that prefetch the URL verify no one. The PIN from the fragment
// is shown for the reader to check.
const out = document.getElementById('result');
const button = document.getElementById('confirm');
const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token');
const pin = params.get('pin');
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
      body: JSON.stringify(pin ? {token, pin} : {token}),
    });
    const j = await r.json();
    out.textContent = j.message + (j.instructions ? ' ' + j.instructions : '');
    out.className = r.ok ? 'ok' : 'error';
    if (r.ok) { history.replaceState(null, '', location.pathname); }
  } catch (e) {
    out.textContent = out.dataset.failed; out.className = 'error'; button.disabled = false;
  }
});
