import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { Secret } from "../../provider/core/secret";
import { ManualClock } from "../../provider/core/clock";
import { createStore } from "../../provider/stores/registry";
import { configFromObject } from "../../provider/compose/config";
import type { Store } from "../../provider/stores/types";
import { startMoto, type Moto } from "../support/moto";
import { startOpenBao, type OpenBao } from "../support/openbao";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * End to end with the real Pulumi CLI (file backend, offline) and real stores: the embedded
 * file store, moto_server (AWS Secrets Manager) and OpenBao (Vault KV v2).
 */
const PROGRAM = `"use strict";
const pulumi = require("@pulumi/pulumi");
const dsops = require("@dsops/pulumi");
const cfg = new pulumi.Config();
const ref = new dsops.SecretReference("ref", { ref: cfg.require("ref") });
const byName = new dsops.SecretReference("by-name", { store: cfg.require("store"), key: cfg.require("key"), transform: "json_extract:.password" });
// An input that is not known during the first preview: it must never reach a store.
const chained = new dsops.SecretReference("chained", { store: byName.storeType.apply(() => cfg.require("store")), key: cfg.require("key") + "#user" });
const env = new dsops.Environment("env", { configFile: "dsops.yaml", env: "app" });
exports.value = ref.value;
exports.versionId = ref.versionId;
exports.password = byName.value;
exports.user = chained.value;
exports.variables = env.variables;
exports.plan = env.plan;
`;

function value(tag: string): string {
  return `e2e-${tag}-${randomBytes(9).toString("base64url")}`;
}

interface Family {
  name: string;
  start(): Promise<{ settings: Record<string, unknown>; key: string; stop(): Promise<void> }>;
}

const families: Family[] = [
  {
    name: "file",
    async start() {
      return { settings: { type: "file", path: "./secrets.store" }, key: "app/token", stop: async () => undefined };
    },
  },
  {
    name: "aws-secretsmanager",
    async start() {
      const moto: Moto = await startMoto();
      return {
        settings: { type: "aws.secretsmanager", endpoint: moto.endpoint, region: "us-east-1", access_key_id: "test", secret_access_key: "test" },
        key: "app/token",
        stop: () => moto.stop(),
      };
    },
  },
  {
    name: "vault",
    async start() {
      const bao: OpenBao = await startOpenBao();
      return { settings: { type: "vault", address: bao.address, token: bao.rootToken }, key: "secret/app/token", stop: () => bao.stop() };
    },
  },
];

describe("Pulumi end to end (real CLI, file backend)", function () {
  this.timeout(600000);
  before(() => {
    pulumiBinDir();
  });

  for (const family of families) {
    describe(`SecretReference and Environment on ${family.name}`, () => {
      let project: PulumiProject;
      let stop: () => Promise<void>;
      let store: Store;
      let key: string;
      const used: string[] = [];
      const put = async (k: string, v: string) => store.put!(k, new Secret(v));

      before(async () => {
        const started = await family.start();
        stop = started.stop;
        key = started.key;
        project = new PulumiProject(`dsops-${family.name}`, PROGRAM);
        project.write(
          "dsops.yaml",
          `secretStores:\n  main: ${JSON.stringify(started.settings)}\nenvs:\n  app:\n    TOKEN: { from: "store://main/${key}" }\n    USER: { from: "store://main/${key}-json#user" }\n    MODE: { literal: e2e }\n`,
        );
        store = createStore("main", configFromObject({ secretStores: { main: started.settings } }).stores.main, { configDir: project.dir, clock: new ManualClock(Date.now()), env: {} });
      });
      after(async () => {
        await store?.close?.();
        await stop?.();
        project?.assertNoLeak(used);
        project?.cleanup();
      });

      it("up → preview clean → store changes → preview shows update → up → refresh → destroy, never a plaintext value", async () => {
        const v1 = value("v1");
        const pw = value("pw");
        const user = value("user");
        used.push(v1, pw, user);
        await put(key, v1);
        await put(`${key}-json`, JSON.stringify({ user, password: pw }));
        project.ok(["stack", "init", "e2e"]);
        project.ok(["config", "set", "dsops:configFile", "dsops.yaml"]);
        project.ok(["config", "set", "ref", `store://main/${key}`]);
        project.ok(["config", "set", "store", "main"]);
        project.ok(["config", "set", "key", `${key}-json`]);

        const first = project.previewSummary();
        assert.equal(first.create, 5, JSON.stringify(first)); // stack + 4 resources, with an unknown input
        project.ok(["up", "--yes", "--skip-preview"]);
        let out = project.secretOutputs();
        assert.equal(out.value, v1);
        assert.equal(out.password, pw);
        assert.equal(out.user, user);
        assert.deepEqual(out.variables, { MODE: "e2e", TOKEN: v1, USER: user });
        const shown = project.outputs();
        assert.equal(shown.value, "[secret]");
        assert.equal(shown.variables, "[secret]");
        assert.deepEqual((shown.plan as Array<{ name: string }>).map((p) => p.name), ["MODE", "TOKEN", "USER"]);

        assert.deepEqual(project.previewSummary(), { same: 5 });

        const v2 = value("v2");
        used.push(v2);
        const w2 = await put(key, v2);
        assert.deepEqual(project.previewSummary(), { same: 3, update: 2 }, "the reference and the env drifted");
        project.ok(["up", "--yes", "--skip-preview"]);
        out = project.secretOutputs();
        assert.equal(out.value, v2);
        assert.equal(out.versionId, w2.versionId);
        assert.deepEqual(project.previewSummary(), { same: 5 });

        const v3 = value("v3");
        used.push(v3);
        const w3 = await put(key, v3);
        project.ok(["refresh", "--yes", "--skip-preview"]);
        const state = JSON.parse(project.ok(["stack", "export"]).stdout) as { deployment: { resources: Array<{ type: string; urn: string; outputs: Record<string, unknown> }> } };
        const refState = state.deployment.resources.find((r) => r.urn.endsWith("::ref"));
        assert.equal(refState?.type, "pulumi-nodejs:dynamic/dsops:SecretReference");
        assert.equal(refState?.outputs.versionId, w3.versionId, "refresh read the new version");
        assert.deepEqual((refState?.outputs.value as { [k: string]: unknown })["4dabf18193072939515e22adb298388d"], "1b47061264138c4ac30d75fd1eb44270", "value stays a secret in state");

        project.ok(["destroy", "--yes", "--skip-preview"]);
        assert.equal((await store.get({ key })).value.reveal(), v3, "destroy leaves the store alone");
        project.assertNoLeak(used);
      });

      it("fails with the resource, the reference and the cause, no value and no stack trace", () => {
        project.ok(["config", "set", "ref", `store://main/${key}-does-not-exist`]);
        const r = project.run(["up", "--yes", "--skip-preview"]);
        assert.notEqual(r.status, 0);
        const text = r.stdout + r.stderr;
        assert.match(text, /SecretReference store:\/\/main\/[^ ]*-does-not-exist: .*not found/);
        assert.match(text, /dsops:SecretReference \(ref\)/);
        assert.ok(!/\n\s+at .+\(.+:\d+:\d+\)/.test(text), "no stack trace");
        project.assertNoLeak(used);
      });
    });
  }
});
