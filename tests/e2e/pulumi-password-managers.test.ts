// Real password managers' CLIs (Debian's keepassxc-cli on a KDBX database the test creates; the real Bitwarden CLI `bw` with a vault synced from a local server speaking the Bitwarden server API, tests/support/bitwarden-server.ts, as no Bitwarden server can run here; the real @bitwarden/sdk-napi against a local stand-in server speaking Bitwarden Secrets Manager's wire protocol, tests/support/bitwarden-sm-server.ts) under a real `pulumi up`: SecretReference and Environment read through them.
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sdkCall } from "../../provider/stores/bitwarden-sm";
import { BW_CLI, BW_PASSWORD, bitwardenLoggedIn, type BitwardenLogin } from "../support/bitwarden-server";
import { startBitwardenSmServerProcess, type BwsServerProcess } from "../support/bitwarden-sm-server";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

const hasKeePassXc = spawnSync("keepassxc-cli", ["--version"]).status === 0;

describe("Pulumi end to end: password managers through SecretReference and Environment", function () {
  this.timeout(600000);
  let dir: string;
  let project: PulumiProject | undefined;
  const MASTER = `kp-master-${randomBytes(8).toString("hex")}`;

  function kp(args: string[], input: string): void {
    const r = spawnSync("keepassxc-cli", args, { cwd: dir, input, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
  /** Set an entry's password with keepassxc-cli itself (groups first), as a user would. */
  function kpSet(entry: string, value: string, extra: string[] = []): void {
    const groups = entry.split("/").slice(0, -1);
    for (let i = 1; i <= groups.length; i++) spawnSync("keepassxc-cli", ["mkdir", "team.kdbx", groups.slice(0, i).join("/")], { cwd: dir, input: `${MASTER}\n` });
    const exists = spawnSync("keepassxc-cli", ["show", "-a", "title", "team.kdbx", entry], { cwd: dir, input: `${MASTER}\n` }).status === 0;
    kp([exists ? "edit" : "add", ...extra, "-p", "team.kdbx", entry], `${MASTER}\n${value}\n`);
  }

  before(() => {
    pulumiBinDir();
  });

  describe("keepassxc", () => {
    before(function () {
      if (!hasKeePassXc) this.skip();
      dir = mkdtempSync(join(tmpdir(), "dsops-e2e-pm-"));
      kp(["db-create", "-t", "100", "-p", "team.kdbx"], `${MASTER}\n${MASTER}\n`);
    });
    after(() => {
      project?.cleanup();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("keepassxc: a SecretReference and an Environment read entries (password, #username); a changed entry is drift on preview; the master password and values stay out of state", () => {
      const api = `api-${randomBytes(9).toString("base64url")}`;
      const db = `db-${randomBytes(9).toString("base64url")}`;
      kpSet("prod/api", api, ["-u", "svc-api"]);
      kpSet("prod/db", db);
      const database = join(dir, "team.kdbx");
      project = new PulumiProject(
        "dsops-pm",
        `"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
const cfg = new pulumi.Config();
const kp = { type: "keepassxc", database: ${JSON.stringify(database)}, password: cfg.requireSecret("master") };
const api = new dsops.SecretReference("api", { store: kp, key: "prod/api" });
const env = new dsops.Environment("env", {
    env: "e",
    config: {
      secretStores: { kp: { type: "keepassxc", database: ${JSON.stringify(database)}, password: "\${KP_MASTER}" } },
      envs: { e: { DB: { from: "kp:prod/db" }, USER: { from: "store://kp/prod/api#username" } } },
    },
});
exports.api = api.value;
exports.vars = env.variables;
`,
        { KP_MASTER: MASTER },
      );
      project.ok(["stack", "init", "pm"]);
      project.run(["config", "set", "--secret", "master", MASTER], {}, false);
      project.ok(["up", "--yes", "--skip-preview"]);
      const out = project.secretOutputs() as { api: string; vars: Record<string, string> };
      assert.equal(out.api, api);
      assert.deepEqual(out.vars, { DB: db, USER: "svc-api" });
      assert.deepEqual(project.previewSummary(), { same: 3 });
      // The entry changes in KeePassXC: the reference shows the drift.
      const api2 = `api2-${randomBytes(9).toString("base64url")}`;
      kpSet("prod/api", api2);
      assert.deepEqual(project.previewSummary(), { same: 2, update: 1 });
      project.assertNoLeak([MASTER, api, db, api2]);
    });
  });

  describe("bitwarden", () => {
    let w: BitwardenLogin | undefined;
    let bwProject: PulumiProject | undefined;
    after(async () => {
      bwProject?.cleanup();
      await w?.close();
    });

    it("bitwarden: a SecretReference and an Environment read a login's #password and #username and a note through bw; the session key stays out of state", async () => {
      w = await bitwardenLoggedIn();
      const pw = `bwpw-${randomBytes(9).toString("base64url")}`;
      const note = `bwnote-${randomBytes(9).toString("base64url")}`;
      const encode = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64");
      assert.equal((await w.bw(["create", "item"], encode({ type: 1, name: "e2e-login", login: { username: "e2e-user", password: pw } }))).code, 0);
      assert.equal((await w.bw(["create", "item"], encode({ type: 2, name: "e2e-note", notes: note, secureNote: { type: 0 } }))).code, 0);
      // bw reads its synced local copy during the run (the store's default, as dsops): the server is not needed then.
      const store = { type: "bitwarden", cli_path: BW_CLI, appdata_dir: w.appdata };
      bwProject = new PulumiProject(
        "dsops-bw",
        `"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
const cfg = new pulumi.Config();
const ref = new dsops.SecretReference("login", { store: { ...${JSON.stringify(store)}, session: cfg.requireSecret("bws") }, key: "e2e-login#password" });
const env = new dsops.Environment("env", {
  env: "e",
  config: {
    secretStores: { bw: { ...${JSON.stringify(store)}, session: "\${BWS}" } },
    envs: { e: { USER: { from: "bw:e2e-login#username" }, NOTE: { from: "bw:e2e-note" } } },
  },
});
exports.pw = ref.value;
exports.vars = env.variables;
`,
        { BWS: w.session, NODE_EXTRA_CA_CERTS: w.env.NODE_EXTRA_CA_CERTS, BITWARDENCLI_APPDATA_DIR: w.appdata },
      );
      bwProject.ok(["stack", "init", "bw"]);
      bwProject.run(["config", "set", "--secret", "bws", w.session], {}, false);
      bwProject.ok(["up", "--yes", "--skip-preview"]);
      const out = bwProject.secretOutputs() as { pw: string; vars: Record<string, string> };
      assert.equal(out.pw, pw);
      assert.deepEqual(out.vars, { USER: "e2e-user", NOTE: note });
      assert.deepEqual(bwProject.previewSummary(), { same: 3 });
      bwProject.assertNoLeak([pw, note, w.session, BW_PASSWORD]);
    });
  });

  describe("bitwarden-sm", () => {
    let srv: BwsServerProcess | undefined;
    let smProject: PulumiProject | undefined;
    const admin = `e2e-admin#${randomBytes(4).toString("hex")}`;
    after(async () => {
      smProject?.cleanup();
      await sdkCall(admin, "close", [], "admin", 30000).catch(() => undefined);
      await srv?.stop();
    });

    it("bitwarden-sm: a SecretReference (by name and by id) and an Environment read Secrets Manager through the SDK; an updated secret is drift; the access token and values stay out of state", async () => {
      srv = await startBitwardenSmServerProcess();
      const s = srv;
      // Seeded through the wire with the real SDK, as the organisation's admin would (the server runs in its own process).
      const sdk = <T>(op: Parameters<typeof sdkCall>[1], ...args: unknown[]) => sdkCall(admin, op, args, "admin", 30000) as Promise<T>;
      await sdk("open", s.apiUrl, s.identityUrl);
      await sdk("login", s.accessToken);
      const [db, api] = [`smdb-${randomBytes(9).toString("base64url")}`, `smapi-${randomBytes(9).toString("base64url")}`];
      const dbSecret = await sdk<{ id: string }>("create", s.organizationId, "E2E_DB_PASSWORD", db, "", [s.projectId]);
      const apiSecret = await sdk<{ id: string }>("create", s.organizationId, "E2E_API_KEY", api, "", [s.projectId]);
      const store = { type: "bitwarden-sm", organization_id: s.organizationId, project_id: s.projectId, api_url: s.apiUrl, identity_url: s.identityUrl };
      smProject = new PulumiProject(
        "dsops-bws",
        `"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
const cfg = new pulumi.Config();
const byName = new dsops.SecretReference("db", { store: { ...${JSON.stringify(store)}, access_token: cfg.requireSecret("bwsToken") }, key: "E2E_DB_PASSWORD" });
const byId = new dsops.SecretReference("api", { store: { ...${JSON.stringify(store)}, access_token: cfg.requireSecret("bwsToken") }, key: ${JSON.stringify(apiSecret.id)} });
const env = new dsops.Environment("env", {
  env: "e",
  config: {
    secretStores: { bws: { ...${JSON.stringify(store)}, access_token: "\${BWS_ACCESS_TOKEN}" } },
    envs: { e: { DB: { from: "bws:E2E_DB_PASSWORD" } } },
  },
});
exports.db = byName.value;
exports.api = byId.value;
exports.vars = env.variables;
`,
        { BWS_ACCESS_TOKEN: s.accessToken },
      );
      smProject.ok(["stack", "init", "bws"]);
      smProject.run(["config", "set", "--secret", "bwsToken", s.accessToken], {}, false);
      smProject.ok(["up", "--yes", "--skip-preview"]);
      const out = smProject.secretOutputs() as { db: string; api: string; vars: Record<string, string> };
      assert.equal(out.db, db);
      assert.equal(out.api, api);
      assert.deepEqual(out.vars, { DB: db });
      assert.deepEqual(smProject.previewSummary(), { same: 4 });
      // The secret is updated in Secrets Manager: the references reading it show the drift.
      const db2 = `smdb2-${randomBytes(9).toString("base64url")}`;
      await sdk("update", s.organizationId, dbSecret.id, "E2E_DB_PASSWORD", db2, "", [s.projectId]);
      assert.deepEqual(smProject.previewSummary(), { same: 2, update: 2 });
      const [tokenHead, tokenKey] = s.accessToken.split(":");
      smProject.assertNoLeak([db, api, db2, s.accessToken, tokenHead.split(".")[2], tokenKey]);
    });
  });
});
