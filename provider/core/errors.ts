/**
 * The project's error types. Every error a user can cause is a DsopsError: the CLI prints
 * its message (no stack trace) and exits 1. Messages never contain secret values.
 */
export class DsopsError extends Error {
  /** A short hint printed after the message. */
  readonly hint?: string;
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = new.target.name;
    this.hint = options?.hint;
  }
}

/** dsops.yaml or an inline configuration is invalid. */
export class ConfigError extends DsopsError {
  constructor(
    message: string,
    /** Each problem found, already formatted with its path, line and column. */
    readonly problems: string[] = [message],
    options?: { hint?: string },
  ) {
    super(message, options);
  }
}

/** A reference string or object cannot be parsed. */
export class ReferenceError_ extends DsopsError {}
export { ReferenceError_ as RefError };

/** A transform string is unknown or failed on its input. */
export class TransformError extends DsopsError {}

/** The store has no such secret, version or field. */
export class NotFoundError extends DsopsError {
  readonly code = "NotFound";
}

/** The store refused the credentials. */
export class AuthError extends DsopsError {
  readonly code = "Auth";
}

/** A store call failed; `retryable` marks throttling and transient failures. */
export class StoreError extends DsopsError {
  constructor(
    message: string,
    readonly retryable = false,
    options?: { hint?: string; cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A store call took longer than the store's timeout_ms. */
export class TimeoutError extends StoreError {
  constructor(message: string) {
    super(message, true);
  }
}

/** One failed variable of an env. */
export interface VariableFailure {
  /** Variable name in the env. */
  readonly variable: string;
  /** Store name, when the variable comes from a store. */
  readonly store?: string;
  /** Key in the store. */
  readonly key?: string;
  /** The cause, without any value. */
  readonly cause: string;
}

/** Resolving an env failed for one or more variables; every failure is listed. */
export class ResolveError extends DsopsError {
  constructor(readonly env: string, readonly failures: VariableFailure[]) {
    super(
      `env "${env}": ${failures.length} variable${failures.length === 1 ? "" : "s"} failed to resolve:\n` +
        failures
          .map((f) => `  - ${f.variable}${f.store ? ` (store ${f.store}${f.key ? `, key ${f.key}` : ""})` : ""}: ${f.cause}`)
          .join("\n"),
    );
  }
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
