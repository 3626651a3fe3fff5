import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ManualClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileStore } from "../../provider/stores/file";
import { diffBlock, pulumiBinDir, PulumiProject } from "../support/pulumi";

/**
 * The dsops provider plugin (bin/pulumi-resource-dsops) from a Pulumi YAML program: the real
 * Pulumi CLI, the real YAML language host (pulumi-yaml v1.25.0, built by
 * scripts/install-pulumi.sh), the plugin found on PATH or installed from the tarball of
 * `npm run build:plugin`, and the embedded file store (no cloud).
 */
const ROOT = join(__dirname, "..", "..", "..");
const PLUGIN = join(ROOT, "bin", "pulumi-resource-dsops");
const VERSION = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

/** The resources and outputs of the main program; `duration` is the window's. */
const program = (duration: string) => `name: PROJECT
runtime: yaml
variables:
  fetched:
    fn::invoke:
      function: dsops:index:getSecret
      arguments:
        ref: store://vault/app/token
resources:
  token:
    type: dsops:index:SecretReference
    properties:
      ref: store://vault/app/token
  password:
    type: dsops:index:SecretReference
    properties:
      store: extra
      key: db/password
  window:
    type: dsops:index:MaintenanceWindow
    properties:
      schedule: "0 2 * * 0"
      duration: ${duration}
      timezone: Europe/Berlin
outputs:
  token: \${token.value}
  tokenVersion: \${token.versionId}
  storeType: \${token.storeType}
  password: \${password.value}
  fetched: \${fetched.value}
  windowOpen: \${window.isOpen}
  nextOpenAt: \${window.nextOpenAt}
`;

describe("Pulumi YAML end to end: the dsops provider plugin (pulumi-resource-dsops)", function () {
  this.timeout(600000);
  const projects: PulumiProject[] = [];
  const values: string[] = [];
  const FILE_KEY = `e2e-key-${randomBytes(6).toString("hex")}`;
  /** The Node.js running the tests first (the plugin needs 22+), then the CLI and its language hosts. */
  const basePath = () => `${dirname(process.execPath)}:${pulumiBinDir()}:${process.env.PATH}`;

  /** A YAML project; the plugin on PATH unless `onPath` is false. */
  function yamlProject(name: string, yaml: string, onPath = true) {
    const project = new PulumiProject(`dsops-yaml-${name}`, "", { DSOPS_FILE_KEY: FILE_KEY, PATH: onPath ? `${join(ROOT, "bin")}:${basePath()}` : basePath() });
    projects.push(project);
    project.write("Pulumi.yaml", yaml.replace("PROJECT", `dsops-yaml-${name}`));
    project.write("dsops.yaml", "secretStores:\n  vault: { type: file, path: ./team.store }\n");
    const store = (file: string) => new FileStore("s", { type: "file", path: join(project.dir, file) }, { configDir: project.dir, clock: new ManualClock(Date.now()), env: { DSOPS_FILE_KEY: FILE_KEY } });
    const put = async (file: string, key: string, tag: string) => {
      const v = `${tag}-${randomBytes(9).toString("base64url")}`;
      values.push(v);
      return { value: v, versionId: (await store(file).put(key, new Secret(v))).versionId };
    };
    const resourceState = (name: string) => {
      const state = JSON.parse(project.ok(["stack", "export"]).stdout) as { deployment: { resources: Array<{ urn: string; type: string; inputs: Record<string, unknown>; outputs: Record<string, unknown> }> } };
      const r = state.deployment.resources.find((x) => x.urn.endsWith(`::${name}`));
      assert.ok(r, `no resource ${name} in state`);
      return r;
    };
    return { project, put, store, resourceState };
  }

  before(() => {
    const bin = pulumiBinDir();
    assert.ok(existsSync(join(bin, "pulumi-language-yaml")), `scripts/install-pulumi.sh put no pulumi-language-yaml in ${bin}`);
    assert.ok(existsSync(join(ROOT, "dist", "provider", "plugin", "main.js")), "build first: dist/provider/plugin/main.js is missing");
  });
  after(() => {
    for (const p of projects) p.cleanup();
  });

  it("`pulumi package get-schema bin/pulumi-resource-dsops` prints schema.json, at package.json's version", () => {
    const { project } = yamlProject("schema", "name: PROJECT\nruntime: yaml\n");
    const r = project.ok(["package", "get-schema", PLUGIN]);
    const served = JSON.parse(r.stdout) as { name: string; version: string };
    assert.deepEqual(served, JSON.parse(readFileSync(join(ROOT, "schema.json"), "utf8")));
    assert.equal(served.name, "dsops");
    assert.equal(served.version, VERSION);
  });

  it("SecretReference, MaintenanceWindow and getSecret: up (secret outputs), clean preview, drift in preview --diff, refresh, destroy; no plaintext in state", async () => {
    const { project, put, store, resourceState } = yamlProject("main", program("4h"));
    const token1 = await put("team.store", "app/token", "token1");
    const password = await put("extra.store", "db/password", "password1");
    project.ok(["stack", "init", "dev"]);
    // Both provider settings reach the plugin: the store `vault` is in dsops.yaml, `extra` in dsops:stores.
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    project.ok(["config", "set", "dsops:stores", JSON.stringify({ extra: { type: "file", path: "./extra.store" } })]);

    const up = project.ok(["up", "--yes", "--skip-preview"]);
    assert.match(up.stdout, /\+ 4 created/, up.stdout);
    const shown = project.outputs();
    for (const k of ["token", "password", "fetched"]) assert.equal(shown[k], "[secret]", `output ${k} is not a secret`);
    const outs = project.secretOutputs();
    assert.equal(outs.token, token1.value);
    assert.equal(outs.password, password.value);
    assert.equal(outs.fetched, token1.value);
    assert.equal(outs.tokenVersion, "1");
    assert.equal(outs.storeType, "file");
    assert.equal(typeof outs.windowOpen, "boolean");
    assert.match(String(outs.nextOpenAt), /^\d{4}-\d\d-\d\dT/);
    // The value is a secret in state (ciphertext), with the schema's property names.
    const token = resourceState("token");
    assert.equal(token.type, "dsops:index:SecretReference");
    assert.equal(token.outputs.versionId, "1");
    assert.equal(token.outputs.ref, "store://vault/app/token");
    assert.ok(token.outputs.value && typeof token.outputs.value === "object" && "ciphertext" in (token.outputs.value as object), "value is not a secret in state");
    assert.equal(resourceState("window").type, "dsops:index:MaintenanceWindow");
    assert.equal(resourceState("window").outputs.duration, "4h");

    assert.deepEqual(project.previewSummary(), { same: 4 }, "a preview right after up changes nothing");

    // The secret changes in the store: preview --diff names the property that moved, and from what to what.
    const token2 = await put("team.store", "app/token", "token2");
    assert.equal(token2.versionId, "2");
    const diff = project.ok(["preview", "--diff"]);
    const tokenBlock = diffBlock(diff.stdout, "SecretReference", "token");
    assert.match(tokenBlock, /~ dsops:index:SecretReference: \(update\)/, diff.stdout);
    assert.match(tokenBlock, /~ versionId\s*: "1" => "2"/, diff.stdout);
    assert.equal(diffBlock(diff.stdout, "SecretReference", "password"), "", `password did not change:\n${diff.stdout}`);
    assert.match(diff.stdout, /~ 1 to update/, diff.stdout);
    // …and why, in words: a message of the resource (--diff prints messages on stderr; a plain preview under Diagnostics).
    const why = /SecretReference store:\/\/vault\/app\/token: the secret has a new version in the store \(versionId "1" in state, "2" now\): it changed outside this program/;
    assert.match(diff.stderr, why, diff.stderr);
    const plain = project.ok(["preview"]);
    assert.match(plain.stdout, /~\s+dsops:index:SecretReference token update \[diff: ~versionId\]/, plain.stdout);
    assert.match(plain.stdout.slice(plain.stdout.indexOf("Diagnostics:")), why, plain.stdout);

    // refresh reads the new version into state; up then hands the new value to the program.
    const refresh = project.ok(["refresh", "--yes", "--skip-preview"]);
    assert.match(refresh.stdout, /dsops:index:SecretReference token updated/, refresh.stdout);
    assert.doesNotMatch(refresh.stdout, /changed outside this program/, "a refresh is no drift to explain");
    assert.equal(resourceState("token").outputs.versionId, "2");
    assert.deepEqual(project.previewSummary(), { same: 4 }, "the refreshed state is current");
    project.ok(["up", "--yes", "--skip-preview"]);
    assert.equal(project.secretOutputs().token, token2.value);

    // An input change of the window: preview --diff names it.
    project.write("Pulumi.yaml", program("2h").replace("PROJECT", "dsops-yaml-main"));
    const windowDiff = project.ok(["preview", "--diff"]);
    assert.match(diffBlock(windowDiff.stdout, "MaintenanceWindow", "window"), /~ duration\s*: "4h" => "2h"/, windowDiff.stdout);
    project.ok(["up", "--yes", "--skip-preview"]);
    assert.equal(resourceState("window").outputs.duration, "2h");

    const destroy = project.ok(["destroy", "--yes", "--skip-preview"]);
    assert.match(destroy.stdout, /- 4 deleted/, destroy.stdout);
    // Deleting a SecretReference never deletes anything in the store.
    assert.equal((await store("team.store").get({ key: "app/token" })).value.reveal(), token2.value);
    project.assertNoLeak(values);
  });

  it("installed with `pulumi plugin install resource dsops <version> --file` (npm run build:plugin) instead of PATH", async () => {
    const { project, put } = yamlProject(
      "installed",
      `name: PROJECT\nruntime: yaml\nresources:\n  token:\n    type: dsops:index:SecretReference\n    properties:\n      ref: store://vault/app/token\n  inline:\n    type: dsops:index:SecretReference\n    properties:\n      store: { type: file, path: ./team.store }\n      key: app/token\noutputs:\n  token: \${token.value}\n  inline: \${inline.value}\n`,
      false,
    );
    const token = await put("team.store", "app/token", "installed");
    const tarball = execFileSync("bash", [join(ROOT, "scripts", "build-plugin.sh"), join(project.dir, "plugin-out")], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim().split("\n").pop() as string;
    assert.match(tarball, new RegExp(`pulumi-resource-dsops-v${VERSION.replace(/\./g, "\\.")}-\\w+-\\w+\\.tar\\.gz$`));
    project.ok(["plugin", "install", "resource", "dsops", VERSION, "--file", tarball]);
    const plugins = JSON.parse(project.ok(["plugin", "ls", "--json"]).stdout) as Array<{ name: string; kind: string; version: string }>;
    assert.ok(plugins.some((p) => p.name === "dsops" && p.kind === "resource" && p.version === VERSION), JSON.stringify(plugins));
    project.ok(["stack", "init", "dev"]);
    project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
    const up = project.ok(["up", "--yes", "--skip-preview"]);
    assert.doesNotMatch(up.stdout + up.stderr, /pulumi-resource-dsops from \$PATH/, "the installed plugin is used, not one from PATH");
    const outs = project.secretOutputs();
    assert.equal(outs.token, token.value);
    assert.equal(outs.inline, token.value, "an inline store (a map in schema.json) works from YAML");
    project.ok(["destroy", "--yes", "--skip-preview"]);
    project.assertNoLeak(values);
  });

  describe("attacks: Check failures name the property; the CLI exits non-zero", () => {
    const cases: Array<{ what: string; resource: string; property: RegExp; reason: RegExp }> = [
      { what: "an unknown store name", resource: "type: dsops:index:SecretReference\n    properties:\n      ref: store://valut/app/token", property: /property ref\b/, reason: /unknown store "valut" \(did you mean "vault"\?\)/ },
      { what: "a malformed reference", resource: 'type: dsops:index:SecretReference\n    properties:\n      ref: "vault/app/token"', property: /property ref\b/, reason: /reference "vault\/app\/token": must start with store:\/\// },
      { what: "a store without a key", resource: "type: dsops:index:SecretReference\n    properties:\n      store: vault", property: /property key\b/, reason: /store needs a key/ },
      { what: "a bad cron expression of a window", resource: 'type: dsops:index:MaintenanceWindow\n    properties:\n      schedule: "99 * * * *"\n      duration: 4h', property: /property schedule\b/, reason: /"99 \* \* \* \*" is not a valid cron expression/ },
      { what: "an env the configuration does not have", resource: "type: dsops:index:Environment\n    properties:\n      configFile: dsops.yaml\n      env: dve", property: /property env\b/, reason: /unknown env "dve"/ },
    ];
    for (const c of cases) {
      it(`${c.what}`, () => {
        const { project } = yamlProject(`attack-${cases.indexOf(c)}`, `name: PROJECT\nruntime: yaml\nresources:\n  bad:\n    ${c.resource}\n`);
        project.ok(["stack", "init", "dev"]);
        project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
        for (const args of [["preview"], ["up", "--yes", "--skip-preview"]]) {
          const r = project.run(args);
          const text = r.stdout + r.stderr;
          assert.notEqual(r.status, 0, `pulumi ${args[0]} exited 0:\n${text}`);
          assert.match(text, c.property, text);
          assert.match(text, c.reason, text);
          assert.doesNotMatch(text, /\n\s+at .*\.js:\d+/, `a stack trace was printed:\n${text}`);
        }
        assert.doesNotMatch(project.ok(["stack", "export"]).stdout, /dsops:index:/, "nothing was created");
      });
    }

    it("a key missing from the store fails the up naming the reference; nothing is created", async () => {
      const { project, put } = yamlProject("attack-missing", "name: PROJECT\nruntime: yaml\nresources:\n  token:\n    type: dsops:index:SecretReference\n    properties:\n      ref: store://vault/app/missing\n");
      await put("team.store", "app/token", "present");
      project.ok(["stack", "init", "dev"]);
      project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
      const r = project.run(["up", "--yes", "--skip-preview"]);
      const text = r.stdout + r.stderr;
      assert.notEqual(r.status, 0, text);
      assert.match(text, /SecretReference store:\/\/vault\/app\/missing: .*not found/i, text);
      assert.doesNotMatch(text, /\n\s+at .*\.js:\d+/, `a stack trace was printed:\n${text}`);
      assert.doesNotMatch(project.ok(["stack", "export"]).stdout, /dsops:index:SecretReference/, "nothing was created");
      project.assertNoLeak(values);
    });

    it("an inline store that refuses connections fails the up naming the store and the cause; its fn::secret token stays out of state", () => {
      const TOKEN = `s.e2e-${randomBytes(12).toString("hex")}`;
      values.push(TOKEN);
      const { project } = yamlProject(
        "attack-refused",
        `name: PROJECT\nruntime: yaml\nresources:\n  refused:\n    type: dsops:index:SecretReference\n    properties:\n      store:\n        type: vault\n        address: http://127.0.0.1:9\n        token:\n          fn::secret: ${TOKEN}\n        timeout_ms: 2000\n        retries: 0\n      key: secret/app\n`,
      );
      project.ok(["stack", "init", "dev"]);
      const r = project.run(["up", "--yes", "--skip-preview"]);
      const text = r.stdout + r.stderr;
      assert.notEqual(r.status, 0, text);
      assert.match(text, /SecretReference store:\/\/inline%3Avault\/secret\/app: store "inline": cannot reach http:\/\/127\.0\.0\.1:9 .*ECONNREFUSED/, text);
      assert.doesNotMatch(text, /\n\s+at .*\.js:\d+/, `a stack trace was printed:\n${text}`);
      // The program's own source is echoed by nothing here; the token is in neither state nor output.
      project.assertNoLeak([TOKEN]);
    });

    it("a dsops:stores setting that is not JSON names the setting", () => {
      const { project } = yamlProject("attack-config", "name: PROJECT\nruntime: yaml\nresources:\n  token:\n    type: dsops:index:SecretReference\n    properties:\n      ref: store://local/app/token\n");
      project.ok(["stack", "init", "dev"]);
      project.ok(["config", "set", "dsops:stores", "{not json"]);
      const r = project.run(["up", "--yes", "--skip-preview"]);
      const text = r.stdout + r.stderr;
      assert.notEqual(r.status, 0, text);
      assert.match(text, /pulumi:providers:dsops resource 'default': property stores\b/, text);
      assert.match(text, /not a JSON object of stores/, text);
    });
  });
});
