// ESLint (typescript-eslint, recommended rules) for every TypeScript and JavaScript file of the
// repository; `npm run lint` runs it with dependency-cruiser (.dependency-cruiser.cjs, the layer
// rules). Each rule turned off or tuned below says why.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Node's globals, for the few plain JavaScript files (bin/dsops, scripts, examples, quickstart). */
const nodeGlobals = Object.fromEntries(
  ["require", "module", "exports", "process", "console", "Buffer", "__dirname", "__filename", "setTimeout", "clearTimeout", "setInterval", "clearInterval", "URL"].map((g) => [g, "readonly"]),
);

export default tseslint.config(
  { ignores: ["dist/", "coverage/", "**/node_modules/", ".state/", ".pulumi/"] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      // Modules are loaded on demand with `require(…) as typeof import(…)`: the CLI's start-up
      // loads only the command run, and a Pulumi dynamic provider must `require` the engine so
      // closure serialization emits a require, not a copy (DESIGN.md). dependency-cruiser counts
      // these requires in the layer rules.
      "@typescript-eslint/no-require-imports": "off",
      // A leading `_` marks a parameter an interface requires but this implementation does not
      // read, or a key left out of a rest copy (`const { name: _name, ...own } = inst`).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  {
    files: ["tests/**/*.ts"],
    rules: {
      // Tests read and edit raw JSON (OpenBao's HTTP answers, store files) whose shape is what is
      // under test.
      "@typescript-eslint/no-explicit-any": "off",
      // Tests match CLI tables whose columns are two spaces apart: the pattern reads like the output.
      "no-regex-spaces": "off",
    },
  },
  { files: ["**/*.js", "**/*.cjs", "bin/dsops", "bin/pulumi-resource-dsops"], languageOptions: { sourceType: "commonjs", globals: nodeGlobals } },
);
