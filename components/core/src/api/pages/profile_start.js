// Runs last, once every part of the profile page's script has set up its listeners, and once the
// page speaks the link's language (lang.js).
ready.then(() => { if (token) { load(); } else { $('recovery').hidden = false; } });
