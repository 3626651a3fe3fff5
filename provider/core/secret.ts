import { inspect } from "node:util";

const REDACTED = "[secret]";
const plaintext = new WeakMap<Secret, string>();

/**
 * A secret value. It redacts itself wherever it could be printed or serialized
 * (`String()`, template literals, `JSON.stringify`, `util.inspect`, `console.log`).
 * Only code that must hand the plaintext over calls `reveal()`.
 */
export class Secret {
  constructor(value: string) {
    plaintext.set(this, value);
    Object.freeze(this);
  }

  /** The plaintext. Call only where the value must leave the process or be transformed. */
  reveal(): string {
    return plaintext.get(this) as string;
  }

  /** Length of the plaintext, safe to show. */
  get length(): number {
    return this.reveal().length;
  }

  /**
   * A masked form for `--print`: eight asterisks whatever the value (empty stays empty). No
   * character of the value is shown, and the length is not given away.
   */
  masked(): string {
    return this.reveal().length === 0 ? "" : "*".repeat(8);
  }

  /** A new Secret with the plaintext mapped through `fn`. */
  map(fn: (value: string) => string): Secret {
    return new Secret(fn(this.reveal()));
  }

  equals(other: Secret): boolean {
    return this.reveal() === other.reveal();
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return "Secret([secret])";
  }

  static isSecret(v: unknown): v is Secret {
    return v instanceof Secret;
  }
}

/** Replace every occurrence of any of the given plaintexts in `text`. */
export function scrub(text: string, secrets: Iterable<Secret | string>): string {
  let out = text;
  for (const s of secrets) {
    const v = typeof s === "string" ? s : s.reveal();
    if (v.length >= 4) out = out.split(v).join(REDACTED);
  }
  return out;
}
