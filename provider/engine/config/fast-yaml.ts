/**
 * The fast path of reading dsops.yaml: the plain subset most files are written in, read line by
 * line into the value the yaml library would build, with no document, no node per scalar and no
 * positions. Anything outside the subset (or in doubt) answers undefined, and the caller reads
 * the file with the yaml library as before: that path alone reports YAML errors, duplicate keys,
 * anchors and aliases. Positions for the messages of a file read here come from the library too,
 * parsed only when a message needs one (provider/engine/config/load.ts).
 *
 * The subset: printable ASCII only (no tab, no CR); block mappings (the root at column 1, each
 * level indented deeper than its parent); keys that are plain names (`[A-Za-z_][A-Za-z0-9_./-]*`,
 * not null/true/false, not `__proto__`, each once per mapping); values that are a nested block
 * mapping, nothing (null), a one-line flow mapping of such keys and scalars (`{ a: b, c: "d" }`),
 * a double-quoted scalar without escapes, a single-quoted one, or a plain one-line scalar that is
 * a string starting with a letter, `_`, `/`, `$`, `./`, `../` or `~/`, null/true/false in the core schema's
 * spellings, or a decimal integer without leading zeros (at most 15 digits); comments.
 */

type Obj = Record<string, unknown>;

/** `key:` then the rest of the line: the indentation, the key, what follows the colon. */
const ENTRY = /^( *)([A-Za-z_][A-Za-z0-9_./-]*):(?: +(.*))?$/;
const INT = /^(?:0|[1-9][0-9]{0,14})$/;
/** Plain scalars the core schema reads as null or a boolean. */
const SPECIAL: Record<string, null | boolean> = { null: null, Null: null, NULL: null, true: true, True: true, TRUE: true, false: false, False: false, FALSE: false };
/** What may stand after a scalar on its line: spaces, then a comment after at least one space. */
const TAIL = /^(?: +(?:#.*)?)?$/;
/** Longest implicit key YAML accepts is 1024 characters; keep well below. */
const MAX_KEY = 1000;

const GIVE_UP: unique symbol = Symbol("outside the subset");

/** The key's own problems: a reserved spelling, `__proto__`, too long. */
function keyOk(key: string): boolean {
  // null/true/false spellings are 4 or 5 characters long; most keys are not looked up at all.
  return key.length <= MAX_KEY && key !== "__proto__" && !((key.length === 4 || key.length === 5) && Object.hasOwn(SPECIAL, key));
}

/** A plain scalar's value (its text already trimmed and cut at a comment), or GIVE_UP. */
function plain(text: string, flow: boolean): unknown {
  if (text === "") return GIVE_UP;
  if (Object.hasOwn(SPECIAL, text)) return SPECIAL[text];
  const c = text.charCodeAt(0);
  if (c >= 48 && c <= 57) return INT.test(text) ? Number(text) : GIVE_UP;
  // A letter, `_`, `/` or `$` first, or a path (`./`, `../`, `~/`): a string in the core schema.
  const path = (c === 46 || c === 126) && /^(?:\.\.?|~)\//.test(text);
  if (!((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 47 || c === 36 || path)) return GIVE_UP;
  // ": " (or ":" at the end) would start a mapping; in a flow mapping `,[]{}` end or nest.
  if (/:(?: |$)/.test(text)) return GIVE_UP;
  if (flow && /[,[\]{}]|:[,\]}]/.test(text)) return GIVE_UP;
  return text;
}

/** A scalar starting at `s[i]` (quoted or plain); [value, index after it] or GIVE_UP. */
function scalarAt(s: string, i: number, flow: boolean): [unknown, number] | typeof GIVE_UP {
  const q = s.charCodeAt(i);
  if (q === 34) {
    const end = s.indexOf('"', i + 1);
    if (end < 0) return GIVE_UP;
    const body = s.slice(i + 1, end);
    if (body.includes("\\")) return GIVE_UP;
    return [body, end + 1];
  }
  if (q === 39) {
    let j = i + 1;
    let out = "";
    for (;;) {
      const end = s.indexOf("'", j);
      if (end < 0) return GIVE_UP;
      out += s.slice(j, end);
      if (s.charCodeAt(end + 1) === 39) {
        out += "'";
        j = end + 2;
        continue;
      }
      return [out, end + 1];
    }
  }
  // Plain: up to a comment (" #"), or in a flow mapping up to "," or "}".
  let end = s.length;
  const hash = s.indexOf(" #", i);
  if (hash >= 0) end = hash;
  if (flow) {
    const m = /[,}]/.exec(s.slice(i, end));
    if (m) end = i + m.index;
  }
  const v = plain(s.slice(i, end).trim(), flow);
  return v === GIVE_UP ? GIVE_UP : [v, end];
}

/** A one-line flow mapping `{ … }` from `s[0]`, with nothing but a comment after it. */
function flowMap(s: string): Obj | typeof GIVE_UP {
  const out: Obj = {};
  let i = 1;
  const skip = () => {
    while (s.charCodeAt(i) === 32) i++;
  };
  skip();
  if (s[i] === "}") return TAIL.test(s.slice(i + 1)) ? out : GIVE_UP;
  for (;;) {
    skip();
    const m = /^[A-Za-z_][A-Za-z0-9_./-]*: +/.exec(s.slice(i, i + MAX_KEY + 8));
    if (!m) return GIVE_UP;
    const key = m[0].slice(0, m[0].indexOf(":"));
    if (!keyOk(key) || Object.hasOwn(out, key)) return GIVE_UP;
    i += m[0].length;
    const v = scalarAt(s, i, true);
    if (v === GIVE_UP) return GIVE_UP;
    out[key] = v[0];
    i = v[1];
    skip();
    if (s[i] === ",") {
      i++;
      skip();
      if (s[i] === "}") return GIVE_UP; // a trailing comma: valid, but left to the library
      continue;
    }
    if (s[i] === "}") return TAIL.test(s.slice(i + 1)) ? out : GIVE_UP;
    return GIVE_UP;
  }
}

/** The value after `key: ` on its line (non-empty, not a comment), or GIVE_UP. */
function inlineValue(rest: string): unknown {
  if (rest[0] === "{") return flowMap(rest);
  const v = scalarAt(rest, 0, false);
  if (v === GIVE_UP) return GIVE_UP;
  return TAIL.test(rest.slice(v[1])) ? v[0] : GIVE_UP;
}

/**
 * The value the yaml library would build from `text` (core schema, YAML 1.2), when `text` is in
 * the plain subset this reads; undefined otherwise (the caller then uses the library).
 */
export function fastParseYaml(text: string): { value: Obj } | undefined {
  // Printable ASCII and newlines only: no tab, CR, BOM, control or non-ASCII character to judge.
  if (/[^\n\x20-\x7e]/.test(text)) return undefined;
  const root: Obj = {};
  /** Open mappings, innermost last, each with its column. */
  const stack: Array<{ indent: number; map: Obj }> = [];
  /** A `key:` with nothing after it, waiting for its nested mapping (or staying null). */
  let pending: { map: Obj; key: string; indent: number } | undefined;
  let start = 0;
  const n = text.length;
  while (start <= n) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = n;
    const line = text.slice(start, end);
    start = end + 1;
    // Blank and comment-only lines: nothing.
    let ind = 0;
    while (line.charCodeAt(ind) === 32) ind++;
    if (ind === line.length || line.charCodeAt(ind) === 35) continue;
    const m = ENTRY.exec(line);
    if (!m) return undefined;
    const key = m[2];
    if (!keyOk(key)) return undefined;
    let map: Obj;
    if (pending && ind > pending.indent) {
      map = {};
      pending.map[pending.key] = map;
      stack.push({ indent: ind, map });
    } else {
      if (stack.length === 0) {
        if (ind !== 0) return undefined;
        stack.push({ indent: 0, map: root });
      }
      while (stack.length && stack[stack.length - 1].indent > ind) stack.pop();
      const top = stack[stack.length - 1];
      if (!top || top.indent !== ind) return undefined;
      map = top.map;
    }
    pending = undefined;
    if (Object.hasOwn(map, key)) return undefined;
    const rest = m[3];
    if (rest === undefined || rest === "" || rest[0] === "#") {
      map[key] = null;
      pending = { map, key, indent: ind };
      continue;
    }
    const v = inlineValue(rest);
    if (v === GIVE_UP) return undefined;
    map[key] = v;
    // A deeper line next would continue this scalar over lines (or be an error): the library's.
    const next = nextContentIndent(text, start);
    if (next > ind) return undefined;
  }
  return stack.length ? { value: root } : undefined;
}

/** The indentation of the next line that is neither blank nor a comment, from `start`; -1 at the end. */
function nextContentIndent(text: string, start: number): number {
  let i = start;
  const n = text.length;
  while (i < n) {
    let ind = 0;
    while (text.charCodeAt(i + ind) === 32) ind++;
    const c = text.charCodeAt(i + ind);
    if (c === 10) {
      i += ind + 1;
      continue;
    }
    if (i + ind >= n) return -1;
    if (c === 35) {
      const nl = text.indexOf("\n", i);
      if (nl < 0) return -1;
      i = nl + 1;
      continue;
    }
    return ind;
  }
  return -1;
}

