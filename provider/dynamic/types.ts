/**
 * Types the SDK's declarations name. This module imports nothing: the published `.d.ts` of
 * `@dsops/pulumi` must not reach zod's (or any other library's) types, so that programs compile
 * under the `pulumi new typescript` tsconfig (no `skipLibCheck`, no `esModuleInterop`).
 */

/** One row of an Environment's plan: where a variable comes from, never its value. */
export interface PlanRow {
  name: string;
  source: "literal" | "store";
  store?: string;
  storeType?: string;
  key?: string;
  field?: string;
  versionId?: string;
  pinned?: boolean;
}
