/**
 * The layers of the house (DESIGN.md), bottom to top; a layer imports only layers below it.
 * Checked by `npm run lint` (and so by `npm test`). `require()` calls, `import type` and
 * `typeof import()` count like imports.
 *
 *   kernel    provider/core/
 *   leaves    provider/engine/ · provider/stores/ · provider/schedule/ · provider/rotation/targets/
 *   features  provider/rotation/ (all but targets/)
 *   ops       provider/notify/ · provider/metrics/ · provider/health/ · provider/guard/ · provider/report/
 *   compose   provider/compose/ (the dsops.yaml schema and loader, the rotation engine wired to ops)
 *   faces     provider/cli/ · provider/dynamic/ · provider/plugin/ · provider/library/ · sdk/
 *
 * Within a layer, folders may import each other as long as no folder cycle forms.
 */
const CORE = "^provider/core/";
const LEAVES = "^provider/(engine|stores|schedule|rotation/targets)/";
const ROTATION = "^provider/rotation/(?!targets/)";
const OPS = "^provider/(notify|metrics|health|guard|report)/";
const COMPOSE = "^provider/compose/";
const FACES = "^(provider/(cli|dynamic|plugin|library)/|sdk/)";
const OURS = "^(provider|sdk)/";

const above = (...layers) => layers.join("|");

module.exports = {
  forbidden: [
    {
      name: "kernel-imports-nothing-of-ours",
      comment: "provider/core is the kernel below every layer: it imports nothing of ours.",
      severity: "error",
      from: { path: CORE },
      to: { path: OURS, pathNot: CORE },
    },
    {
      name: "leaves-import-only-the-kernel",
      comment: "engine, stores, schedule and rotation targets sit on the kernel (and each other), never on a feature, an op, the composition or a face.",
      severity: "error",
      from: { path: LEAVES },
      to: { path: above(ROTATION, OPS, COMPOSE, FACES) },
    },
    {
      name: "rotation-imports-no-op",
      comment: "provider/rotation talks to notify, metrics and health through events and hooks wired in provider/compose, never by importing them.",
      severity: "error",
      from: { path: ROTATION },
      to: { path: above(OPS, COMPOSE, FACES) },
    },
    {
      name: "ops-import-no-composition-or-face",
      comment: "notify, metrics, health and guard sit below the composition and the faces.",
      severity: "error",
      from: { path: OPS },
      to: { path: above(COMPOSE, FACES) },
    },
    {
      name: "composition-imports-no-face",
      comment: "provider/compose builds what the faces call; it never imports a face.",
      severity: "error",
      from: { path: COMPOSE },
      to: { path: FACES },
    },
    {
      name: "nothing-imports-the-plugin",
      comment: "provider/plugin is the native provider host (bin/pulumi-resource-dsops runs it); no other module imports it.",
      severity: "error",
      from: { path: OURS, pathNot: "^provider/plugin/" },
      to: { path: "^provider/plugin/" },
    },
    {
      name: "no-pulumi-below-the-faces",
      comment: "Only the faces know Pulumi: nothing below them imports @pulumi/pulumi.",
      severity: "error",
      from: { path: OURS, pathNot: FACES },
      to: { path: "(^|/)node_modules/@pulumi/pulumi/" },
    },
    {
      name: "no-module-cycles",
      comment: "No module reaches itself through its imports.",
      severity: "error",
      from: { path: OURS },
      to: { circular: true },
    },
    {
      name: "no-folder-cycles",
      comment: "No folder reaches itself through the imports of its modules.",
      severity: "error",
      scope: "folder",
      from: { path: OURS },
      to: { circular: true },
    },
    {
      name: "no-unresolvable-imports",
      comment:
        "An import that resolves to nothing is a typo or a missing dependency. Not counted: the CLI's require of ../../../package.json (its version), which resolves from dist/provider/cli/, where it runs; and the dynamic providers' require of @dsops/pulumi/… (the package itself, as users install it: DESIGN.md), which resolves to dist/ once built; and @bitwarden/sdk-napi, an optional peer dependency the bitwarden-sm store loads when it is installed (it says how to install it when not).",
      severity: "error",
      from: { path: OURS },
      to: { couldNotResolve: true, pathNot: ["^(\\.\\./)+package\\.json$", "^@dsops/pulumi/", "^@bitwarden/sdk-napi$"] },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(dist|coverage)/" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["require", "node", "default", "types"], mainFields: ["main", "types"] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
