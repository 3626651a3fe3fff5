import { extname } from "node:path";
import { DsopsError } from "../core/errors";
import type { Secret } from "../core/secret";

export const outputFormats = ["dotenv", "json", "yaml", "template"] as const;
export type OutputFormat = (typeof outputFormats)[number];

/** The format a file name implies: .json, .yaml/.yml, .env*, .tmpl/.template. */
export function formatFromPath(path: string): OutputFormat | undefined {
  const base = path.split(/[\\/]/).pop() ?? path;
  const ext = extname(base).toLowerCase();
  if (ext === ".json") return "json";
  if (ext === ".yaml" || ext === ".yml") return "yaml";
  if (ext === ".tmpl" || ext === ".template") return "template";
  if (base.startsWith(".env") || ext === ".env" || base.endsWith(".env")) return "dotenv";
  return undefined;
}

const NEEDS_QUOTES = /[ \t\n\r"'#=$]/;

/** A dotenv value: double-quoted and escaped when empty or holding space, tab, newline, quote, #, = or $. */
export function dotenvValue(v: string): string {
  if (v !== "" && !NEEDS_QUOTES.test(v)) return v;
  const escaped = v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
  return `"${escaped}"`;
}

export interface RenderInput {
  /** Variables by name. */
  readonly variables: Readonly<Record<string, Secret>>;
  /** The instant written as `generated_at` (json, yaml). */
  readonly generatedAt: string;
  /** Template text, for the template format. */
  readonly template?: string;
  /** Template name in errors. */
  readonly templateName?: string;
  readonly env?: NodeJS.ProcessEnv;
}

function plain(vars: Readonly<Record<string, Secret>>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(vars)
      .sort()
      .map((k) => [k, vars[k].reveal()]),
  );
}

/** Render variables in a format. This is one of the few places that unwrap secrets: the output is the secret file. */
export function render(format: OutputFormat, input: RenderInput): string {
  const values = plain(input.variables);
  switch (format) {
    case "dotenv":
      return Object.entries(values)
        .map(([k, v]) => `${k}=${dotenvValue(v)}\n`)
        .join("");
    case "json":
      return JSON.stringify({ generated_at: input.generatedAt, generated_by: "dsops", variables: values }, null, 2) + "\n";
    case "yaml":
      return (require("yaml") as typeof import("yaml")).stringify({ generated_at: input.generatedAt, generated_by: "dsops", variables: values });
    case "template": {
      if (input.template === undefined) throw new DsopsError("the template format needs a template (--template FILE)");
      const { renderTemplate } = require("./template") as typeof import("./template");
      return renderTemplate(input.template, values, { env: input.env, name: input.templateName });
    }
  }
}
