// Runs last, once every part of the profile page's script has set up its listeners.
if (token) { load(); } else { $('recovery').hidden = false; }
