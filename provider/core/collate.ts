/**
 * `a.localeCompare(b)`'s order, without building ICU's collator (~5 ms, once per process) for
 * the names most dsops.yaml files use: upper-case letters, digits and `_` (environment variable
 * names). Under the root collation, which every English locale and C/POSIX keep, those compare
 * letter by letter as `_` < `0`–`9` < `A`–`Z` (`_` is punctuation, which sorts before digits and
 * letters; no case or accent differs), a prefix first. Any other name, or another locale in the
 * environment (Danish sorts `AA` after `Z`), is compared by `localeCompare` itself; each pair is
 * compared right either way, so a sort mixing both is the same order.
 */
export function localeOrder(a: string, b: string): number {
  return rootLocale() && PLAIN.test(a) && PLAIN.test(b) ? plainOrder(a, b) : a.localeCompare(b);
}

/** Sorts `items` in place by `key`'s `localeOrder`, each key checked once (not at every comparison). */
export function localeSort<T>(items: T[], key: (item: T) => string): T[] {
  const plain = rootLocale() && items.every((item) => PLAIN.test(key(item)));
  return items.sort(plain ? (a, b) => plainOrder(key(a), key(b)) : (a, b) => key(a).localeCompare(key(b)));
}

function plainOrder(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = weight(a.charCodeAt(i)) - weight(b.charCodeAt(i));
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

const PLAIN = /^[A-Z0-9_]*$/;

/** `_` first, then digits, then letters (code units put `_` after the letters). */
const weight = (c: number): number => (c === 95 ? 0 : c);

let root: boolean | undefined;

/** The environment names no locale, C/POSIX, or an English one: ICU's default then collates ASCII by the root order. */
function rootLocale(): boolean {
  if (root === undefined) {
    const ok = (v: string | undefined) => v === undefined || v === "" || /^(C|POSIX)(\.[\w-]+)?$/.test(v) || /^en(_[A-Z]{2})?(\.[\w-]+)?$/.test(v);
    root = ["LC_ALL", "LC_COLLATE", "LC_MESSAGES", "LANG", "LANGUAGE"].every((k) => ok(process.env[k]));
  }
  return root;
}
