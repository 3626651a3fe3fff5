import { TransformError } from "../core/errors";

export type PathStep = string | number;

/**
 * Parse a path such as `.a.b[0]`, `a.b`, `["key.with.dots"]`, `.items[2].name` or `.list[-1]`
 * (a negative index counts from the end). A bare word (`password`) is a one-step path; `.`
 * alone is the whole document. An empty step (`a..b`, `a.`) is an error.
 */
export function parsePath(path: string): PathStep[] {
  const steps: PathStep[] = [];
  let i = 0;
  const s = path.trim();
  if (s === "" || s === ".") return steps;
  while (i < s.length) {
    const c = s[i];
    if (c === ".") {
      i++;
      if (i === s.length || s[i] === ".") throw new TransformError(`path "${path}": empty step after "." (at character ${i})`);
      continue;
    }
    if (c === "[") {
      const close = s.indexOf("]", i);
      if (close < 0) throw new TransformError(`path "${path}": missing "]"`);
      const inner = s.slice(i + 1, close).trim();
      if (/^-?\d+$/.test(inner)) steps.push(Number(inner));
      else if (/^(["']).*\1$/.test(inner)) steps.push(inner.slice(1, -1));
      else throw new TransformError(`path "${path}": index "${inner}" is neither a number nor a quoted key`);
      i = close + 1;
      continue;
    }
    let j = i;
    while (j < s.length && s[j] !== "." && s[j] !== "[") j++;
    steps.push(s.slice(i, j));
    i = j;
  }
  return steps;
}

/** Format steps back into a path string that `parsePath` reads as the same steps. */
export function formatPath(steps: PathStep[]): string {
  return steps
    .map((p) => (typeof p === "number" ? `[${p}]` : /^[A-Za-z0-9_-]+$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`))
    .join("");
}

/** Walk `data` along `path`; a missing step throws a TransformError naming the step (never the data). */
export function extractPath(data: unknown, path: string): unknown {
  let cur: unknown = data;
  const steps = parsePath(path);
  steps.forEach((step, n) => {
    const where = formatPath(steps.slice(0, n + 1));
    if (typeof step === "number") {
      if (!Array.isArray(cur)) throw new TransformError(`path "${path}": ${where} is not an array`);
      const idx = step < 0 ? cur.length + step : step;
      if (idx < 0 || idx >= cur.length) throw new TransformError(`path "${path}": index ${step} out of range (length ${cur.length})`);
      cur = cur[idx];
    } else {
      if (cur === null || typeof cur !== "object" || Array.isArray(cur) || !(step in (cur as object)))
        throw new TransformError(`path "${path}": no key "${step}"`);
      cur = (cur as Record<string, unknown>)[step];
    }
  });
  return cur;
}

/** A value extracted from a document, as the string a variable holds. */
export function stringifyExtracted(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** Extract a field from a JSON document held in a string. */
export function extractJsonField(text: string, path: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new TransformError(`field "${path}": the secret is not a JSON document`);
  }
  return stringifyExtracted(extractPath(doc, path));
}
