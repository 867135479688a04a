// The email-change part of the profile page (SPEC §2.3), after profile.js in the one hashed
// script. Steps show one at a time: the code for the current address, the new address, the code
// for the new address. Server answers are already localized: successes go to `#ec-status`,
// errors (their `message`) to `#ec-error` (`role=alert`), their instructions below.
const ec = {
  start: $('ec-start'), status: $('ec-status'), error: $('ec-error'), hint: $('ec-instructions'),
  countdown: $('ec-countdown'), clock: $('ec-window'), done: $('ec-done'),
  code: $('ec-code'), newEmail: $('ec-new-email'), checked: $('ec-check-result'), codeNew: $('ec-code-new'),
};
const ecSteps = {confirm_current: $('ec-step-current'), enter_new: $('ec-step-email'), confirm_new: $('ec-step-new')};
const ecResend = {confirm_current: $('ec-resend'), confirm_new: $('ec-resend-new')};
// Errors after which the flow cannot go on: only a new start helps.
const ecOver = new Set(['FLOW_NOT_FOUND', 'FLOW_EXPIRED', 'TOO_MANY_ATTEMPTS']);
// Errors after which a new start is one way on (a resend may be the other).
const ecRestart = new Set(['WRONG_STEP', 'CODE_EXPIRED', 'TOO_MANY_CODES']);
let flow = null;
let phase = null;
let sendsLeft = 0;
let resendTimer = null;
let windowTimer = null;
function ecStep(state) {
  phase = state in ecSteps ? state : null;
  for (const [name, el] of Object.entries(ecSteps)) { el.hidden = name !== phase; }
  ec.start.hidden = phase !== null;
  ec.start.disabled = false;
  if (phase !== 'confirm_current' && phase !== 'confirm_new') { ecCountdown(0); }
  if (phase !== 'confirm_new') { clearInterval(windowTimer); ec.clock.hidden = true; }
  ec.checked.textContent = '';
  ec.checked.className = '';
  if (phase === null) { ec.status.textContent = ''; }
  const input = ecInput();
  if (input) { input.value = ''; input.focus(); }
}
const ecInput = () => ({confirm_current: ec.code, enter_new: ec.newEmail, confirm_new: ec.codeNew})[phase];
function ecError(text, instructions) {
  ec.error.textContent = text || '';
  ec.hint.textContent = instructions || '';
}
// The resend button of this phase waits `seconds`, showing the seconds left.
function ecCountdown(seconds) {
  clearInterval(resendTimer);
  const button = ecResend[phase];
  const end = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.ceil((end - Date.now()) / 1000);
    if (left > 0) {
      ec.countdown.textContent = ec.countdown.dataset.template.replace('{n}', left);
      ec.countdown.hidden = false;
      if (button) { button.disabled = true; }
      return;
    }
    clearInterval(resendTimer);
    ec.countdown.hidden = true;
    ec.countdown.textContent = '';
    if (button) { button.disabled = sendsLeft <= 0; }
  };
  tick();
  if (seconds > 0) { resendTimer = setInterval(tick, 1000); }
}
// The time left to confirm the new address, counted from request-new.
function ecWindow(seconds) {
  clearInterval(windowTimer);
  const end = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.ceil((end - Date.now()) / 1000);
    if (left > 0) {
      const time = Math.floor(left / 60) + ':' + String(left % 60).padStart(2, '0');
      ec.clock.textContent = ec.clock.dataset.template.replace('{t}', time);
      ec.clock.className = 'rule';
    } else {
      clearInterval(windowTimer);
      ec.clock.textContent = ec.clock.dataset.over;
      ec.clock.className = 'error';
      ec.start.hidden = false;
    }
  };
  ec.clock.hidden = false;
  tick();
  windowTimer = setInterval(tick, 1000);
}
function ecSent(j) {
  sendsLeft = Number(j.sends_left) || 0;
  ecCountdown(Number(j.resend_after_s) || 0);
}
// Posts a step; the answer on success, null after showing why not.
async function ecCall(button, path, extra) {
  ecError('');
  button.disabled = true;
  const before = ec.status.textContent;
  ec.status.textContent = ec.status.dataset.working;
  let answer;
  try {
    // Start carries the token alone: the API refuses fields it does not expect.
    answer = await post(path, Object.assign({token}, flow ? {flow} : {}, extra));
  } catch (e) {
    button.disabled = false;
    ec.status.textContent = before;
    ecError(ec.error.dataset.failed);
    return null;
  }
  const [status, j, retry] = answer;
  button.disabled = false;
  if (status === 200) { ec.status.textContent = j.message || ''; return j; }
  ec.status.textContent = before;
  ecFailed(j, retry);
  return null;
}
function ecFailed(j, retry) {
  ecError(j.message || ec.error.dataset.failed, j.instructions);
  if (j.code === 'TOO_MANY_CODES') { sendsLeft = 0; }
  if (j.code === 'INVALID_TOKEN') {
    // The profile link is used or expired: nothing on this page works with it any more.
    sessionStorage.removeItem('profile-token');
    ecStep(null);
    ec.start.hidden = true;
    save.disabled = true;
    $('recovery').hidden = false;
  } else if (ecOver.has(j.code) || (j.code === 'INVALID_CODE' && j.attempts_left === 0)) {
    ecStep(null);
  } else if (ecRestart.has(j.code)) {
    ec.start.hidden = false;
  } else if (j.code === 'TOO_MANY_REQUESTS' && retry > 0 && ecResend[phase]) {
    ecCountdown(retry);
  } else if ((j.code === 'INVALID_CODE' || j.code === 'INVALID_INPUT') && ecInput()) {
    ecInput().select();
  }
}
ec.start.addEventListener('click', async () => {
  flow = null;
  ec.done.hidden = true;
  const j = await ecCall(ec.start, '/api/email-change/start', {});
  if (!j) { return; }
  flow = j.flow;
  ecStep(j.state || 'confirm_current');
  ecSent(j);
});
for (const [state, button] of Object.entries(ecResend)) {
  button.addEventListener('click', async () => {
    const j = await ecCall(button, '/api/email-change/resend', {});
    if (j && phase === state) { ecSent(j); } else if (phase === state) { button.disabled = ec.countdown.hidden ? sendsLeft <= 0 : true; }
  });
}
const digits = (input) => input.value.replace(/\s+/g, '');
$('ec-confirm').addEventListener('click', async () => {
  const j = await ecCall($('ec-confirm'), '/api/email-change/confirm-current', {code: digits(ec.code)});
  if (j) { ecStep('enter_new'); }
});
async function ecCheck() {
  const email = ec.newEmail.value.trim();
  ec.checked.textContent = '';
  ec.checked.className = '';
  if (!email || !flow || phase !== 'enter_new') { return; }
  let answer;
  try { answer = await post('/api/email-change/check', {token, flow, email}); } catch (e) { ecError(ec.error.dataset.failed); return; }
  const [status, j, retry] = answer;
  if (ec.newEmail.value.trim() !== email) { return; }
  if (status === 200) { show(ec.checked, j.message || '', true); return; }
  if (j.code === 'EMAIL_TAKEN' || j.code === 'INVALID_INPUT') { show(ec.checked, j.message || '', false); return; }
  ecFailed(j, retry);
}
ec.newEmail.addEventListener('change', ecCheck);
ec.newEmail.addEventListener('input', () => { ec.checked.textContent = ''; ec.checked.className = ''; });
$('ec-request-new').addEventListener('click', async () => {
  const j = await ecCall($('ec-request-new'), '/api/email-change/request-new', {email: ec.newEmail.value.trim()});
  if (!j) { return; }
  ecStep('confirm_new');
  ecSent(j);
  ecWindow(Number(j.window_s) || 0);
});
$('ec-confirm-new').addEventListener('click', async () => {
  const j = await ecCall($('ec-confirm-new'), '/api/email-change/confirm-new', {code: digits(ec.codeNew)});
  if (!j) { return; }
  // Every earlier token was revoked; the answer's fresh one carries this page on.
  token = j.token;
  sessionStorage.setItem('profile-token', token);
  flow = null;
  ecStep(null);
  ec.status.textContent = '';
  ec.newEmail.value = '';
  ec.done.textContent = j.message || j.email;
  ec.done.hidden = false;
  $('email').textContent = j.email;
  const verified = $('verified');
  verified.textContent = verified.dataset.yes;
});
const onEnter = (input, button) => input.addEventListener('keydown', (e) => { if (e.key === 'Enter') { $(button).click(); } });
onEnter(ec.code, 'ec-confirm');
onEnter(ec.newEmail, 'ec-request-new');
onEnter(ec.codeNew, 'ec-confirm-new');
