// Over 400 lines on purpose: the lexer, parser and evaluator of one small language, read together.
/**
 * A renderer for the subset of Go's text/template that dsops templates use, so templates
 * written for the Go dsops render the same here (checked against Go 1.26 with map[string]string).
 *
 * Supported: text and `{{ }}` actions with trim markers (`{{- `, ` -}}`) and comments; `.`,
 * `.NAME`, `$`, `$x := p`, `$x = p`; pipelines (`a | f b`: the piped value is the last
 * argument) and `( … )`; literals ("…" with Go escapes, raw `…`, 'c', numbers, true, false,
 * nil); if / else if / else; with / else with / else; range over a map (sorted keys), a list or
 * an int, with else, break and continue. Not supported: define, template, block.
 * Functions: Go's and or not len index print printf println eq ne lt le gt ge; dsops's env has
 * json b64enc b64dec quote indent nindent sha256; and default upper lower trim list.
 *
 * Missing variables behave as in Go with a map: `.MISSING` prints "<no value>" and is false in
 * if/with, `index . "MISSING"` is "" (a string's zero value), and passing `.MISSING` to a
 * function that needs a string (`.MISSING | quote`) is an error.
 * Errors read `template <name>:<line>:<col>: <what>` at the action's `{{`. They name types,
 * never values (where Go's `range can't iterate over <value>` shows the value).
 */
import { createHash } from "node:crypto";
import { DsopsError } from "../core/errors";

/** A template cannot be parsed or executed. The message never contains a variable's value. */
export class TemplateError extends DsopsError {}

// ---------------------------------------------------------------- values
/** A Go float64 (a literal with "." or an exponent); plain JS numbers are Go ints. */
class Float {
  constructor(readonly v: number) {}
}
/** What Go calls an invalid value: the result of `.MISSING`. */
const NO_VALUE: unique symbol = Symbol("no value");
type Val = string | number | boolean | null | Float | typeof NO_VALUE | Val[] | Map<string, Val>;

/** An execution error without a position; the action that ran it adds one. */
class Fail extends Error {}
const BREAK = Symbol("break");
const CONTINUE = Symbol("continue");
const isNil = (v: Val): v is null | typeof NO_VALUE => v === null || v === NO_VALUE;

function truth(v: Val): boolean {
  if (isNil(v)) return false;
  if (v instanceof Float) return v.v !== 0;
  if (v instanceof Map) return v.size > 0;
  if (Array.isArray(v) || typeof v === "string") return v.length > 0;
  return typeof v === "number" ? v !== 0 : v;
}

/** Go's name for the type of a value. */
function typeName(v: Val): string {
  if (isNil(v)) return "<nil>";
  if (v instanceof Float) return "float64";
  if (v instanceof Map) return "map[string]string";
  if (Array.isArray(v)) return "[]interface {}";
  return typeof v === "number" ? "int" : typeof v === "boolean" ? "bool" : "string";
}

/** Go's %v for a float64: %g with the shortest representation. */
function goFloat(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const [m, e] = x.toExponential().split("e");
  const exp = Number(e);
  return exp < -4 || exp >= 6 ? `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}` : String(x);
}

const sortedKeys = (m: Map<string, Val>): string[] => [...m.keys()].sort();

/** fmt's %v. */
function fmtV(v: Val): string {
  if (isNil(v)) return "<nil>";
  if (v instanceof Float) return goFloat(v.v);
  if (Array.isArray(v)) return `[${v.map(fmtV).join(" ")}]`;
  if (v instanceof Map) return `map[${sortedKeys(v).map((k) => `${k}:${fmtV(v.get(k)!)}`).join(" ")}]`;
  return String(v);
}

const ESCAPES: Record<string, string> = { "\x07": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v" };
const hex = (n: number, w: number): string => n.toString(16).padStart(w, "0");

/** Go's strconv.Quote (QuoteRune with q = "'"). */
function goQuote(s: string, q = '"'): string {
  let out = q;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === q || ch === "\\") out += "\\" + ch;
    else if (c >= 0xd800 && c <= 0xdfff) out += "\ufffd";
    else if (/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch)) out += ch;
    else out += ESCAPES[ch] ?? (c < 0x80 ? "\\x" + hex(c, 2) : c < 0x10000 ? "\\u" + hex(c, 4) : "\\U" + hex(c, 8));
  }
  return out + q;
}

/** A code point as a string; U+FFFD for an invalid one, as Go does. */
const rune = (n: number): string => (n >= 0 && n <= 0x10ffff && (n < 0xd800 || n > 0xdfff) ? String.fromCodePoint(n) : "\ufffd");

/** The fmt verbs: each gives undefined for an operand it does not fit. */
const VERBS: Record<string, (v: Val, prec?: number) => string | undefined> = {
  v: fmtV,
  s: (v, prec) => (typeof v !== "string" ? undefined : prec === undefined ? v : [...v].slice(0, prec).join("")),
  q: (v) => (typeof v === "string" ? goQuote(v) : typeof v === "number" ? goQuote(rune(v), "'") : undefined),
  d: (v) => (typeof v === "number" ? String(v) : undefined),
  c: (v) => (typeof v === "number" ? rune(v) : undefined),
  t: (v) => (typeof v === "boolean" ? String(v) : undefined),
  f: (v, prec) => (v instanceof Float ? v.v.toFixed(Math.min(prec ?? 6, 100)) : undefined),
  x: (v) => (typeof v === "string" ? Buffer.from(v, "utf8").toString("hex") : typeof v === "number" ? (v < 0 ? "-" : "") + Math.abs(v).toString(16) : undefined),
  X: (v) => VERBS.x(v)?.toUpperCase(),
};

/** fmt.Sprintf for the verbs above with the flags "-", "+" and "0", a width and a precision. */
function sprintf(format: string, args: Val[]): string {
  let ai = 0;
  const one = (verb: string, v: Val, prec: number | undefined): string => {
    if (Array.isArray(v) && verb !== "v") return `[${v.map((e) => one(verb, e, prec)).join(" ")}]`;
    if (v instanceof Map && verb !== "v") return `map[${sortedKeys(v).map((k) => `${one(verb, k, prec)}:${one(verb, v.get(k)!, prec)}`).join(" ")}]`;
    return VERBS[verb]?.(v, prec) ?? (isNil(v) ? `%!${verb}(<nil>)` : `%!${verb}(${typeName(v)}=${fmtV(v)})`);
  };
  let out = format.replace(/%([-+# 0]*)(\d*)(?:\.(\d*))?(.?)/gsu, (_all, flags: string, width: string, prec: string | undefined, verb: string) => {
    if (verb === "%" || verb === "") return verb === "%" ? "%" : "%!(NOVERB)";
    if (ai >= args.length) return `%!${verb}(MISSING)`;
    const v = args[ai++];
    let s = one(verb, v, prec === undefined ? undefined : Number(prec || 0));
    const numeric = typeof v === "number" || v instanceof Float;
    if (flags.includes("+") && numeric && !s.startsWith("-")) s = "+" + s;
    const pad = Math.max(0, Number(width || 0) - [...s].length);
    if (flags.includes("-")) return s + " ".repeat(pad);
    return flags.includes("0") && numeric ? s.replace(/^[-+]?/, (sign) => sign + "0".repeat(pad)) : " ".repeat(pad) + s;
  });
  if (ai < args.length) out += `%!(EXTRA ${args.slice(ai).map((v) => (isNil(v) ? "<nil>" : `${typeName(v)}=${fmtV(v)}`)).join(", ")})`;
  return out;
}

// ---------------------------------------------------------------- functions
interface Ctx {
  readonly env: NodeJS.ProcessEnv;
  readonly vars: Readonly<Record<string, string>>;
}
interface Fn {
  readonly min: number;
  readonly max: number;
  readonly call: (a: Val[], c: Ctx) => Val;
}

function str(v: Val): string {
  if (typeof v === "string") return v;
  throw new Fail(isNil(v) ? "invalid value (a missing variable?); expected string" : `wrong type for value; expected string; got ${typeName(v)}`);
}
function int(v: Val): number {
  if (typeof v === "number") return v;
  if (v instanceof Float && Number.isInteger(v.v)) return v.v;
  throw new Fail(`wrong type for value; expected int; got ${typeName(v)}`);
}

/** Comparison class: nil, string, number (int), float, boolean or other (lists, maps). */
const kind = (v: Val): string => (isNil(v) ? "nil" : v instanceof Float ? "float" : typeof v === "object" ? "other" : typeof v);
const incompatible = (a: Val, b: Val): Fail => new Fail(`incompatible types for comparison: ${typeName(a)} and ${typeName(b)}`);

function eq(a: Val, b: Val): boolean {
  const [ka, kb] = [kind(a), kind(b)];
  if (ka === "nil" || kb === "nil") return ka === kb;
  if (ka === "other" || kb === "other") throw new Fail(`non-comparable type ${typeName(ka === "other" ? a : b)}`);
  if (ka !== kb) throw incompatible(a, b);
  return a instanceof Float ? a.v === (b as Float).v : a === b;
}
function lt(a: Val, b: Val): boolean {
  const [ka, kb] = [kind(a), kind(b)];
  if ([ka, kb].some((k) => k === "nil" || k === "other" || k === "boolean")) throw new Fail("invalid type for comparison");
  if (ka !== kb) throw incompatible(a, b);
  if (typeof a === "string") return Buffer.compare(Buffer.from(a), Buffer.from(b as string)) < 0;
  return a instanceof Float ? a.v < (b as Float).v : (a as number) < (b as number);
}

function indexOne(item: Val, key: Val): Val {
  if (item instanceof Map) {
    if (typeof key !== "string") throw new Fail(`value has type ${typeName(key)}; should be string`);
    return item.has(key) ? item.get(key)! : "";
  }
  if (isNil(item)) throw new Fail("index of untyped nil");
  if (!Array.isArray(item) && typeof item !== "string") throw new Fail(`can't index item of type ${typeName(item)}`);
  if (typeof key !== "number") throw new Fail(`cannot index slice/array with type ${typeName(key)}`);
  const seq = typeof item === "string" ? Buffer.from(item, "utf8") : item;
  if (key < 0 || key >= seq.length) throw new Fail(`index out of range: ${key}`);
  return seq[key];
}

function toJson(v: Val): unknown {
  if (v === NO_VALUE) return null;
  if (v instanceof Float) return v.v;
  if (Array.isArray(v)) return v.map(toJson);
  return v instanceof Map ? Object.fromEntries(sortedKeys(v).map((k) => [k, toJson(v.get(k)!)])) : v;
}

function indent(n: number, s: string): string {
  if (n < 0) throw new Fail("negative indent");
  return " ".repeat(n) + s.split("\n").join("\n" + " ".repeat(n));
}
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const GO_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
function goTrim(s: string): string {
  let [a, b] = [0, s.length];
  while (a < b && GO_SPACE.test(s[a])) a++;
  while (b > a && GO_SPACE.test(s[b - 1])) b--;
  return s.slice(a, b);
}
const ANY = Infinity;
const fn = (min: number, max: number, call: Fn["call"]): Fn => ({ min, max, call });
const s1 = (f: (s: string) => Val): Fn => fn(1, 1, (a) => f(str(a[0])));

const FUNCS: Record<string, Fn> = {
  and: fn(1, ANY, () => null), // both evaluated lazily by the executor
  or: fn(1, ANY, () => null),
  not: fn(1, 1, (a) => !truth(a[0])),
  len: fn(1, 1, ([v]) => {
    if (typeof v === "string") return Buffer.byteLength(v, "utf8");
    if (Array.isArray(v) || v instanceof Map) return Array.isArray(v) ? v.length : v.size;
    throw new Fail(`len of type ${typeName(v)}`);
  }),
  index: fn(1, ANY, ([item, ...keys]) => (isNil(item) ? indexOne(item, null) : keys.reduce(indexOne, item))),
  print: fn(0, ANY, (a) => a.map((v, i) => (i > 0 && typeof v !== "string" && typeof a[i - 1] !== "string" ? " " : "") + fmtV(v)).join("")),
  println: fn(0, ANY, (a) => a.map(fmtV).join(" ") + "\n"),
  printf: fn(1, ANY, ([f, ...a]) => sprintf(str(f), a)),
  eq: fn(2, ANY, ([a, ...bs]) => bs.some((b) => eq(a, b))),
  ne: fn(2, 2, ([a, b]) => !eq(a, b)),
  lt: fn(2, 2, ([a, b]) => lt(a, b)),
  le: fn(2, 2, ([a, b]) => lt(a, b) || eq(a, b)),
  gt: fn(2, 2, ([a, b]) => !(lt(a, b) || eq(a, b))),
  ge: fn(2, 2, ([a, b]) => !lt(a, b)),
  env: fn(1, 1, (a, c) => c.env[str(a[0])] ?? ""),
  has: fn(1, 1, (a, c) => Object.prototype.hasOwnProperty.call(c.vars, str(a[0]))),
  // Go's encoding/json escapes <, >, &, U+2028 and U+2029.
  json: fn(1, 1, ([v]) => JSON.stringify(toJson(v)).replace(/[<>&\u2028\u2029]/g, (ch) => "\\u" + hex(ch.charCodeAt(0), 4))),
  b64enc: s1((s) => Buffer.from(s, "utf8").toString("base64")),
  b64dec: s1((s) => {
    const clean = s.replace(/[\r\n]/g, "");
    if (!BASE64.test(clean)) throw new Fail("the argument is not valid base64");
    return Buffer.from(clean, "base64").toString("utf8");
  }),
  quote: s1((s) => goQuote(s)),
  indent: fn(2, 2, ([n, s]) => indent(int(n), str(s))),
  nindent: fn(2, 2, ([n, s]) => "\n" + indent(int(n), str(s))),
  sha256: s1((s) => createHash("sha256").update(s, "utf8").digest("hex")),
  default: fn(1, ANY, ([d, v]) => (v !== undefined && truth(v) ? v : d)),
  // Go maps case one character at a time ("ß" stays, "İ" becomes "i") and trims unicode.IsSpace.
  upper: s1((s) => [...s].map((c) => ([...c.toUpperCase()].length === 1 ? c.toUpperCase() : c)).join("")),
  lower: s1((s) => [...s].map((c) => [...c.toLowerCase()][0]).join("")),
  trim: s1(goTrim),
  list: fn(0, ANY, (a) => a),
};

// ---------------------------------------------------------------- lexer
interface Tok {
  /** field, var, ident, lit, nil, dot, or the punctuation itself. */
  readonly t: string;
  /** Source text, for messages. */
  readonly x: string;
  readonly name?: string;
  readonly chain?: string[];
  readonly v?: Val;
}
type Item = { readonly text: string } | { readonly toks: Tok[]; readonly p: number };
type FailAt = (p: number, what: string) => never;

const isSpace = (c: string | undefined): boolean => c === " " || c === "\t" || c === "\r" || c === "\n";
const IDENT = /[\p{L}_][\p{L}\p{N}_]*/uy;
const NUMBER = /[+-]?(?:0[xX][\da-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)/y;
const SIMPLE_ESC: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", "\\": "\\", '"': '"', "'": "'" };

/** Go requires space or punctuation after a word: `$x=1` and `.A"b"` are errors. */
const atTerminator = (src: string, j: number): boolean => j >= src.length || isSpace(src[j]) || ".,|:)(".includes(src[j]) || src.startsWith("}}", j);

function identAt(src: string, j: number): string | undefined {
  IDENT.lastIndex = j;
  return IDENT.exec(src)?.[0];
}

/** Split the source into text and the tokens of each action; comments and trimmed space go. */
function scan(src: string, fail: FailAt): Item[] {
  const items: Item[] = [];
  let trimNext = false;
  const text = (s: string, trimRight: boolean): void => {
    let [a, b] = [0, s.length];
    while (trimNext && a < b && isSpace(s[a])) a++;
    while (trimRight && b > a && isSpace(s[b - 1])) b--;
    if (b > a) items.push({ text: s.slice(a, b) });
    trimNext = false;
  };
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf("{{", i);
    if (open < 0) {
      text(src.slice(i), false);
      break;
    }
    let j = open + 2;
    const trimLeft = src[j] === "-" && isSpace(src[j + 1]);
    if (trimLeft) j += 2;
    text(src.slice(i, open), trimLeft);
    if (src.startsWith("/*", j)) {
      const close = src.indexOf("*/", j + 2);
      if (close < 0) fail(open, "unclosed comment");
      j = close + 2;
      if (src.startsWith("}}", j)) i = j + 2;
      else if (isSpace(src[j]) && src.startsWith("-}}", j + 1)) [i, trimNext] = [j + 4, true];
      else fail(open, "comment ends before closing delimiter");
      continue;
    }
    const toks: Tok[] = [];
    for (;;) {
      if (j >= src.length) fail(open, "unclosed action");
      const [c, start] = [src[j], j];
      const push = (t: Omit<Tok, "x">): void => void toks.push({ ...t, x: src.slice(start, j) });
      const id = identAt(src, j);
      if (isSpace(c) && src[j + 1] === "-" && src.startsWith("}}", j + 2)) {
        [j, trimNext] = [j + 4, true];
        break;
      } else if (isSpace(c)) j++;
      else if (src.startsWith("}}", j)) {
        j += 2;
        break;
      } else if (c === '"' || c === "'") {
        const value = readQuoted(src, j, (p) => (j = p), () => fail(open, c === '"' ? "unterminated quoted string" : "unterminated character constant"), () => fail(open, "invalid syntax"));
        if (c === "'" && [...value].length !== 1) fail(open, `malformed character constant: ${src.slice(start, j)}`);
        push({ t: "lit", v: c === '"' ? value : value.codePointAt(0)! });
      } else if (c === "`") {
        j = src.indexOf("`", j + 1) + 1;
        if (j === 0) fail(open, "unterminated raw quoted string");
        push({ t: "lit", v: src.slice(start + 1, j - 1).replace(/\r/g, "") });
      } else if (/[+\-\d]/.test(c) || (c === "." && /\d/.test(src[j + 1] ?? ""))) {
        NUMBER.lastIndex = j;
        const m = NUMBER.exec(src) ?? fail(open, `unexpected "${c}" in command`);
        j = NUMBER.lastIndex;
        if (/[\p{L}\p{N}_.]/u.test(src[j] ?? "")) fail(open, `bad number syntax: "${src.slice(start, j + 1)}"`);
        if (/(^|[^\da-fA-FxXbBoO])_/.test(m[0]) || (/^[+-]?0[xX]/.test(m[0]) ? /_(?![\da-fA-F])/ : /_(?!\d)/).test(m[0])) fail(open, `illegal number syntax: "${m[0]}"`);
        push({ t: "lit", v: numberValue(m[0]) ?? fail(open, `integer overflow: "${m[0]}"`) });
      } else if (c === "." || c === "$") {
        // ".A.B": an identifier right after the dot; "$x.A": a dot after the variable's name.
        const name = c === "$" ? "$" + (identAt(src, j + 1) ?? "") : undefined;
        j += name?.length ?? 0;
        const chain: string[] = [];
        for (let f = src[j] === "." ? identAt(src, j + 1) : undefined; f !== undefined; f = src[j] === "." ? identAt(src, j + 1) : undefined) {
          chain.push(f);
          j += f.length + 1;
        }
        if (name === undefined && !chain.length) j++;
        push(name !== undefined ? { t: "var", name, chain } : chain.length ? { t: "field", chain } : { t: "dot" });
        if (!atTerminator(src, j)) fail(open, `bad character U+${hex(src.codePointAt(j)!, 4).toUpperCase()} '${src[j]}'`);
      } else if (id !== undefined) {
        j += id.length;
        push(id === "true" || id === "false" ? { t: "lit", v: id === "true" } : id === "nil" ? { t: "nil" } : { t: "ident", name: id });
        if (!atTerminator(src, j)) fail(open, `bad character U+${hex(src.codePointAt(j)!, 4).toUpperCase()} '${src[j]}'`);
      } else if (src.startsWith(":=", j) || "()|,=".includes(c)) {
        j += c === ":" ? 2 : 1;
        push({ t: c === ":" ? ":=" : c });
      } else fail(open, `unexpected "${c}" in command`);
    }
    items.push({ toks, p: open });
    i = j;
  }
  return items;
}

/** A "…" or '…' literal with Go's escapes; bytes from \x and octal escapes are decoded as UTF-8. */
function readQuoted(src: string, j: number, end: (j: number) => void, unterminated: () => never, bad: () => never): string {
  const q = src[j++];
  const bytes: number[] = [];
  const utf8 = (s: string): void => void bytes.push(...Buffer.from(s, "utf8"));
  const digits = (n: number, radix: 8 | 16): number => {
    const d = src.slice(j, (j += n));
    return d.length === n && (radix === 8 ? /^[0-7]+$/ : /^[\da-fA-F]+$/).test(d) ? parseInt(d, radix) : bad();
  };
  for (let c = src[j++]; c !== q; c = src[j++]) {
    if (c === undefined || c === "\n") unterminated();
    if (c !== "\\") utf8(c);
    else if (/[0-7]/.test(src[j])) {
      const b = digits(3, 8);
      bytes.push(b < 256 ? b : bad());
    }
    else {
      const e = src[j++] ?? "";
      if (e in SIMPLE_ESC && (e !== "'" || q === "'") && (e !== '"' || q === '"')) utf8(SIMPLE_ESC[e]);
      else if (e === "x") bytes.push(digits(2, 16));
      else if (e === "u" || e === "U") {
        const cp = digits(e === "u" ? 4 : 8, 16);
        utf8(cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ? bad() : String.fromCodePoint(cp));
      } else bad();
    }
  }
  end(j);
  return Buffer.from(bytes).toString("utf8");
}

/** A Go number literal: an int, or a Float when it has a "." or an exponent. */
function numberValue(text: string): Val | undefined {
  const s = text.replace(/_/g, "");
  const body = s.replace(/^[+-]/, "");
  const sign = s.startsWith("-") ? -1 : 1;
  if (/^0[xXbBoO]/.test(body)) return sign * Number(body);
  if (/[.eE]/.test(body)) return new Float(Number(s));
  if (/^0\d/.test(body)) return /^0[0-7]+$/.test(body) ? sign * parseInt(body, 8) : undefined;
  return sign * Number(body);
}

// ---------------------------------------------------------------- parser
type Arg =
  | { readonly k: "field"; readonly chain: string[] }
  | { readonly k: "var"; readonly name: string; readonly chain: string[] }
  | { readonly k: "fn"; readonly name: string }
  | { readonly k: "lit"; readonly v: Val }
  | { readonly k: "nil" | "dot" }
  | { readonly k: "pipe"; readonly pipe: Pipe };
interface Pipe {
  readonly decl: string[];
  readonly assign: boolean;
  readonly cmds: Arg[][];
}
interface Control {
  readonly k: "if" | "with" | "range";
  readonly p: number;
  readonly pipe: Pipe;
  readonly list: Node[];
  readonly else?: Node[];
}
type Node = { readonly k: "text"; readonly s: string } | { readonly k: "out" | "break" | "continue"; readonly p: number; readonly pipe?: Pipe } | Control;
type Term = { readonly kw: "end" | "else"; readonly rest: Tok[]; readonly p: number };

class Parser {
  private i = 0;
  private at = 0;
  private readonly vars = ["$"];
  private rangeDepth = 0;
  constructor(
    private readonly items: Item[],
    private readonly failAt: FailAt,
  ) {}

  private fail(what: string): never {
    return this.failAt(this.at, what);
  }

  /** Items up to an {{end}} or {{else}} (returned as the terminator) or the end of input. */
  list(): { nodes: Node[]; term?: Term } {
    const nodes: Node[] = [];
    while (this.i < this.items.length) {
      const item = this.items[this.i++];
      if ("text" in item) {
        nodes.push({ k: "text", s: item.text });
        continue;
      }
      const [first, ...rest] = item.toks;
      const p = (this.at = item.p);
      const kw = first?.t === "ident" ? first.name! : "";
      if (kw === "end" || kw === "else") {
        if (kw === "end" && rest.length) this.fail(`unexpected ${rest[0].x} in end`);
        return { nodes, term: { kw, rest, p } };
      } else if (kw === "if" || kw === "with" || kw === "range") nodes.push(this.control(kw, rest, p));
      else if (kw === "break" || kw === "continue") {
        if (!this.rangeDepth) this.fail(`{{${kw}}} outside {{range}}`);
        if (rest.length) this.fail(`unexpected ${rest[0].x} in {{${kw}}}`);
        nodes.push({ k: kw, p });
      } else if (kw === "define" || kw === "template" || kw === "block") this.fail(`{{${kw}}} is not supported`);
      else nodes.push({ k: "out", p, pipe: this.pipeline(item.toks, "command") });
    }
    return { nodes };
  }

  /** if / with / range from the tokens after the keyword; consumes up to and including {{end}}. */
  private control(kw: Control["k"], toks: Tok[], p: number): Control {
    const mark = this.vars.length;
    const pipe = this.pipeline(toks, kw);
    this.rangeDepth += kw === "range" ? 1 : 0;
    const body = this.list();
    this.rangeDepth -= kw === "range" ? 1 : 0;
    let term = body.term ?? this.failAt(p, `missing {{end}} for {{${kw}}}`);
    let elseList: Node[] | undefined;
    if (term.kw === "else") {
      const [next, ...rest] = term.rest;
      this.at = term.p;
      // {{else if …}} in an if and {{else with …}} in a with open a nested one that shares {{end}}.
      if (next?.t === "ident" && next.name === kw && kw !== "range") elseList = [this.control(kw, rest, term.p)];
      else {
        if (next) this.fail(`unexpected ${next.x} in else`);
        const e = this.list();
        term = e.term ?? this.failAt(p, `missing {{end}} for {{${kw}}}`);
        if (term.kw === "else") this.failAt(term.p, "expected end; found {{else}}");
        elseList = e.nodes;
      }
    }
    this.vars.length = mark;
    return { k: kw, p, pipe, list: body.nodes, else: elseList };
  }

  private pipeline(toks: Tok[], ctx: string): Pipe {
    const isVar = (n: number): boolean => toks[n]?.t === "var" && !toks[n].chain!.length;
    const isOp = (n: number): boolean => toks[n]?.t === ":=" || toks[n]?.t === "=";
    const two = isVar(0) && toks[1]?.t === "," && isVar(2);
    if (two && toks[3]?.t === ",") this.fail(`too many declarations in ${ctx}`);
    const decl = isVar(0) && isOp(1) ? [toks[0].name!] : two && isOp(3) ? [toks[0].name!, toks[2].name!] : [];
    const assign = decl.length > 0 && toks[decl.length * 2 - 1].t === "=";
    if (decl.length > 1 && ctx !== "range") this.fail(`too many declarations in ${ctx}`);
    const cur = { i: decl.length * 2 };
    const cmds = this.commands(toks, cur, ctx);
    if (cur.i < toks.length) this.fail(`unexpected ${toks[cur.i].x} in ${ctx}`);
    this.vars.push(...decl); // as Go does, even for "=": an undeclared one fails when run
    return { decl, assign, cmds };
  }

  private commands(toks: Tok[], cur: { i: number }, ctx: string): Arg[][] {
    const cmds: Arg[][] = [];
    for (;;) {
      const args: Arg[] = [];
      while (cur.i < toks.length && toks[cur.i].t !== "|" && toks[cur.i].t !== ")") args.push(this.operand(toks, cur, ctx));
      const atEnd = cur.i >= toks.length || toks[cur.i].t === ")";
      if (atEnd && ctx === "parenthesized pipeline" && cur.i >= toks.length) this.fail("unclosed left paren");
      if (!args.length && !(atEnd && cmds.length)) this.fail(atEnd ? `missing value for ${ctx}` : `unexpected "|" in command`);
      if (cmds.length && args.length && ["lit", "dot", "nil"].includes(args[0].k)) this.fail(`non executable command in pipeline stage ${cmds.length + 1}`);
      if (args.length) cmds.push(args);
      if (atEnd) return cmds;
      cur.i++;
    }
  }

  private operand(toks: Tok[], cur: { i: number }, ctx: string): Arg {
    const tok = toks[cur.i++];
    switch (tok.t) {
      case "field":
        return { k: "field", chain: tok.chain! };
      case "var":
        if (!this.vars.includes(tok.name!)) this.fail(`undefined variable "${tok.name}"`);
        return { k: "var", name: tok.name!, chain: tok.chain! };
      case "ident":
        if (!Object.prototype.hasOwnProperty.call(FUNCS, tok.name!)) this.fail(`function "${tok.name}" not defined`);
        return { k: "fn", name: tok.name! };
      case "lit":
        return { k: "lit", v: tok.v! };
      case "nil":
      case "dot":
        return { k: tok.t };
      case "(": {
        const cmds = this.commands(toks, cur, "parenthesized pipeline");
        cur.i++;
        return { k: "pipe", pipe: { decl: [], assign: false, cmds } };
      }
    }
    return this.fail(`unexpected ${tok.x} in ${ctx}`);
  }
}

// ---------------------------------------------------------------- executor
/** What range iterates: a map's entries in key order, a list's, or 0..n-1; nothing for nil. */
function* entries(v: Val): Generator<[Val, Val]> {
  if (v instanceof Map) for (const k of sortedKeys(v)) yield [k, v.get(k)!];
  else if (Array.isArray(v)) for (let i = 0; i < v.length; i++) yield [i, v[i]];
  else if (typeof v === "number") for (let i = 0; i < v; i++) yield [i, i];
}

class Exec {
  readonly out: string[] = [];
  private readonly vars: { n: string; v: Val }[];
  constructor(
    root: Val,
    private readonly ctx: Ctx,
    private readonly err: (p: number, what: string) => TemplateError,
  ) {
    this.vars = [{ n: "$", v: root }];
  }

  walk(nodes: Node[], dot: Val): void {
    for (const n of nodes) {
      if (n.k === "text") this.out.push(n.s);
      else if (n.k === "break" || n.k === "continue") throw n.k === "break" ? BREAK : CONTINUE;
      else if (n.k === "out") {
        const v = this.eval(n.p, n.pipe!, dot);
        if (!n.pipe!.decl.length) this.out.push(isNil(v) ? "<no value>" : fmtV(v));
      } else if (n.k === "range") this.range(n, dot);
      else if (n.k === "if" || n.k === "with") {
        const mark = this.vars.length;
        const v = this.eval(n.p, n.pipe, dot);
        if (truth(v)) this.walk(n.list, n.k === "with" ? v : dot);
        else if (n.else) this.walk(n.else, dot);
        this.vars.length = mark;
      }
    }
  }

  private range(n: Control, dot: Val): void {
    const mark = this.vars.length;
    const v = this.eval(n.p, n.pipe, dot); // declares the variables with the whole value, as Go does
    const decl = n.pipe.decl;
    if (typeof v === "number" && decl.length > 1) throw this.err(n.p, "can't use an int to iterate over more than one variable");
    if (!isNil(v) && typeof v !== "number" && typeof v !== "object") throw this.err(n.p, `range can't iterate over a value of type ${typeName(v)}`);
    if (v instanceof Float) throw this.err(n.p, "range can't iterate over a value of type float64");
    let count = 0;
    for (const [key, elem] of entries(v)) {
      count++;
      const m = this.vars.length;
      if (decl.length === 2) this.set(decl[0], key);
      if (decl.length) this.set(decl[decl.length - 1], elem);
      try {
        this.walk(n.list, elem);
      } catch (e) {
        if (e === BREAK) break;
        if (e !== CONTINUE) throw e;
      } finally {
        this.vars.length = m;
      }
    }
    if (count === 0 && n.else) this.walk(n.else, dot);
    this.vars.length = mark;
  }

  private find(name: string): { n: string; v: Val } {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i].n === name) return this.vars[i];
    throw new Fail(`undefined variable "${name}"`);
  }
  private set(name: string, v: Val): void {
    this.find(name).v = v;
  }

  /** Evaluate an action's pipeline; errors get the action's position. */
  private eval(p: number, pipe: Pipe, dot: Val): Val {
    try {
      return this.pipe(pipe, dot);
    } catch (e) {
      throw e instanceof Fail ? this.err(p, e.message) : e;
    }
  }

  private pipe(pipe: Pipe, dot: Val): Val {
    let v: Val | undefined;
    for (const cmd of pipe.cmds) v = this.command(cmd, dot, v);
    for (const d of pipe.decl) {
      if (pipe.assign) this.set(d, v!);
      else this.vars.push({ n: d, v: v! });
    }
    return v!;
  }

  /** One command; `final` is the value piped in, undefined in the first command. */
  private command([first, ...rest]: Arg[], dot: Val, final: Val | undefined): Val {
    if (first.k === "nil") throw new Fail("nil is not a command");
    if (first.k === "fn") return this.call(first.name, rest, dot, final);
    const hasArgs = rest.length > 0 || final !== undefined;
    if (first.k === "field") return this.field(dot, first.chain, hasArgs);
    if (first.k === "var" && first.chain.length) return this.field(this.find(first.name).v, first.chain, hasArgs);
    if (hasArgs) throw new Fail("can't give argument to non-function");
    return this.arg(first, dot);
  }

  private field(recv: Val, chain: string[], hasArgs: boolean): Val {
    let v = recv;
    for (const name of chain) {
      if (v instanceof Map) v = v.has(name) ? v.get(name)! : NO_VALUE;
      else if (v === NO_VALUE) return NO_VALUE;
      else throw new Fail(v === null ? `nil pointer evaluating interface {}.${name}` : `can't evaluate field ${name} in type ${typeName(v)}`);
    }
    if (hasArgs) throw new Fail(`${chain[chain.length - 1]} is not a method but has arguments`);
    return v;
  }

  private arg(a: Arg, dot: Val): Val {
    switch (a.k) {
      case "field":
        return this.field(dot, a.chain, false);
      case "var":
        return this.field(this.find(a.name).v, a.chain, false);
      case "fn":
        return this.call(a.name, [], dot, undefined);
      case "lit":
        return a.v;
      case "pipe":
        return this.pipe(a.pipe, dot);
    }
    return a.k === "dot" ? dot : null;
  }

  private call(name: string, argNodes: Arg[], dot: Val, final: Val | undefined): Val {
    const f = FUNCS[name];
    const n = argNodes.length + (final === undefined ? 0 : 1);
    if (n < f.min || n > f.max) {
      const want = f.min === f.max ? `${f.min}` : f.max === ANY ? `at least ${f.min}` : `${f.min} to ${f.max}`;
      throw new Fail(`wrong number of args for ${name}: want ${want} got ${n}`);
    }
    const get = (i: number): Val => (i < argNodes.length ? this.arg(argNodes[i], dot) : final!);
    if (name === "and" || name === "or") {
      let v: Val = null;
      for (let i = 0; i < n; i++) if (truth((v = get(i))) !== (name === "and")) return v;
      return v;
    }
    const args = Array.from({ length: n }, (_, i) => get(i)).map((v) => (v === NO_VALUE ? null : v));
    try {
      return f.call(args, this.ctx);
    } catch (e) {
      throw e instanceof Fail ? new Fail(`error calling ${name}: ${e.message}`) : e;
    }
  }
}

/**
 * Render a Go text/template over the variables (plaintext strings; the caller unwraps them).
 * Throws TemplateError `template <name>:<line>:<col>: <what>` for syntax and execution errors.
 */
export function renderTemplate(
  text: string,
  variables: Readonly<Record<string, string>>,
  options?: { env?: NodeJS.ProcessEnv; name?: string },
): string {
  const name = options?.name ?? "template";
  const err = (p: number, what: string): TemplateError => {
    const before = text.slice(0, p);
    return new TemplateError(`template ${name}:${before.split("\n").length}:${p - before.lastIndexOf("\n")}: ${what}`);
  };
  const failAt: FailAt = (p, what) => {
    throw err(p, what);
  };
  try {
    const top = new Parser(scan(text, failAt), failAt).list();
    if (top.term) failAt(top.term.p, `unexpected {{${top.term.kw}}}`);
    const root = new Map<string, Val>(Object.keys(variables).map((k) => [k, variables[k]]));
    const exec = new Exec(root, { env: options?.env ?? process.env, vars: variables }, err);
    exec.walk(top.nodes, root);
    return exec.out.join("");
  } catch (e) {
    // Too deep a nesting, or a string too long to build (a huge printf width): no position.
    throw e instanceof RangeError ? new TemplateError(`template ${name}: ${e.message}`) : e;
  }
}
