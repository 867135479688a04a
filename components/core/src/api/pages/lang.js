// The page's language. The emailed link names the account's language in its fragment
// (`#token=…&lang=ru`); a page opened in a browser that prefers another language fetches itself
// in the account's language and takes over its texts (text nodes and `data-*` attributes, in
// place, so the elements the page script holds stay the same). `ready` settles once that is done
// (at once when there is nothing to do); the page's API calls then ask for `document`'s language.
const langKey = 'page-lang:' + location.pathname;
const ready = (async () => {
  const linked = new URLSearchParams(location.hash.slice(1)).get('lang');
  // The profile page drops its fragment from the address bar; this tab remembers the language.
  if (linked) { rememberLang(linked); }
  const lang = linked || sessionStorage.getItem(langKey);
  if (!lang || !/^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(lang)) { return; }
  if (lang.split('-')[0] === document.documentElement.lang) { return; }
  try {
    // Not long: the page waits for this before it loads anything.
    const r = await fetch(location.pathname, {headers: {'Accept-Language': lang}, signal: AbortSignal.timeout(5000)});
    if (!r.ok) { return; }
    const page = new DOMParser().parseFromString(await r.text(), 'text/html');
    const from = page.querySelector('main');
    const to = document.querySelector('main');
    if (!from || !to || page.documentElement.lang === document.documentElement.lang) { return; }
    takeTexts(from, to);
    document.title = page.title;
    document.documentElement.lang = page.documentElement.lang;
  } catch (e) {
    // The page stays in the browser's language.
  }
})();

// The language this tab keeps for this page (a saved profile's new language replaces it).
function rememberLang(lang) { sessionStorage.setItem(langKey, lang); }

// Copies the texts of `from` (the same page in another language) into `to`, node by node.
function takeTexts(from, to) {
  for (const attribute of from.attributes) {
    if (attribute.name.startsWith('data-')) { to.setAttribute(attribute.name, attribute.value); }
  }
  const theirs = from.childNodes;
  const ours = to.childNodes;
  for (let i = 0; i < theirs.length && i < ours.length; i++) {
    const [a, b] = [theirs[i], ours[i]];
    if (a.nodeType === Node.TEXT_NODE && b.nodeType === Node.TEXT_NODE) {
      b.nodeValue = a.nodeValue;
    } else if (a.nodeType === Node.ELEMENT_NODE && a.nodeName === b.nodeName) {
      takeTexts(a, b);
    }
  }
}
