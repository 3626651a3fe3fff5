// Runs against moto_server, a local server speaking the AWS IAM and STS wire protocols, not real AWS; built CLI (`dsops chaos run`).
import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, ListAccessKeysCommand } from "@aws-sdk/client-iam";
import { systemClock } from "../../provider/core/clock";
import { Secret } from "../../provider/core/secret";
import { FileStore } from "../../provider/stores/file";
import { dsopsRun, type CliResult } from "../support/cli";
import { motoCredentials, startMoto, type Moto } from "../support/moto";

/**
 * Revocation scope of the create-type aws.iam target (two-secret): a lost answer of `create`
 * (target-timeout) and a kill -9 right after it leave no key the rotation made, and never touch a
 * key the rotation did not make (an access key an administrator made by hand for another purpose):
 * that key stays Active, and the rotation record names it in a warning.
 */
describe("dsops chaos run on aws.iam (moto_server): only the keys a rotation made are revoked", function () {
  this.timeout(120000);
  let moto: Moto | undefined;
  let iam: IAMClient | undefined;
  const dir = mkdtempSync(join(tmpdir(), "dsops-chaos-iam-"));
  const env = { DSOPS_FILE_KEY: "chaos-iam-key-" + Math.random().toString(36).slice(2), DSOPS_USER: "tester", AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" };
  const values = new Set<string>();
  const outputs: string[] = [];
  const store = () => new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env });

  async function cli(args: string[]): Promise<CliResult> {
    const r = await dsopsRun(args, { cwd: dir, env });
    outputs.push(r.stdout, r.stderr);
    return r;
  }
  async function stored(key: string): Promise<{ username: string; password: string }> {
    const c = JSON.parse((await store().get({ key, version: "current" })).value.reveal()) as { username: string; password: string };
    values.add(c.password);
    return c;
  }
  /** `<key id>:<status>` of a user's access keys, sorted. */
  const keysOf = async (user: string) => ((await (iam as IAMClient).send(new ListAccessKeysCommand({ UserName: user }))).AccessKeyMetadata ?? []).map((k) => `${k.AccessKeyId}:${k.Status}`).sort();
  async function newKey(user: string): Promise<{ username: string; password: string }> {
    const k = (await (iam as IAMClient).send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey;
    values.add(k?.SecretAccessKey as string);
    return { username: k?.AccessKeyId as string, password: k?.SecretAccessKey as string };
  }
  async function chaos(variable: string, inject: string, extra: string[] = []): Promise<Record<string, unknown> & { verdict: string; rotation: { status: string; steps: string[]; warnings?: string[] } }> {
    const file = join(dir, `${variable}.json`);
    const r = await cli(["chaos", "run", "--env", "staging", "--secret", variable, "--inject", inject, ...extra, "--report", file]);
    const text = readFileSync(file, "utf8");
    outputs.push(text);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    return (JSON.parse(text) as { experiments: Array<Record<string, unknown> & { verdict: string; rotation: { status: string; steps: string[]; warnings?: string[] } }> }).experiments[0];
  }

  before(async () => {
    moto = await startMoto();
    iam = new IAMClient({ region: "us-east-1", endpoint: moto.endpoint, credentials: motoCredentials, maxAttempts: 1 });
    await store().put("aws/admin", new Secret(JSON.stringify({ access_key_id: "test", secret_access_key: "test" })));
    for (const u of ["ct", "ck", "hand"]) {
      await iam.send(new CreateUserCommand({ UserName: u }));
      await store().put(`app/${u}`, new Secret(JSON.stringify(await newKey(u))));
    }
    const two = (u: string) => ({ from: `store://local/app/${u}`, rotation: { service: "iam", strategy: "two-secret", user: u, grace_period: "1h" } });
    writeFileSync(
      join(dir, "dsops.yaml"),
      JSON.stringify({
        version: 1,
        secretStores: { local: { type: "file", path: "./secrets.store" } },
        services: { iam: { type: "aws.iam", region: "us-east-1", endpoint: moto.endpoint, admin: "store://local/aws/admin" } },
        envs: { staging: { TIMEOUT: two("ct"), KILL: two("ck"), HAND: two("hand") } },
        chaos: { envs: ["staging"] },
      }),
    );
  });
  after(async () => {
    iam?.destroy();
    await moto?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("target-timeout on create: the key was made, its answer lost; the rollback deletes it; the stored key stays Active", async () => {
    const old = await stored("app/ct");
    const x = await chaos("TIMEOUT", "target-timeout", ["--timeout", "100ms"]);
    assert.equal(x.verdict, "proven");
    assert.equal(x.rotation.status, "rolled-back");
    assert.deepEqual(x.rotation.steps, ["apply:failed", "restore:ok", "discard:ok"]);
    assert.deepEqual(await keysOf("ct"), [`${old.username}:Active`], "the key the rotation made is gone");
    assert.deepEqual(await stored("app/ct"), old);
  });

  it("kill -9 right after create (kill-at:apply), then the recovery run: the killed run's key is deleted; the keys are the stored ones", async () => {
    const old = await stored("app/ck");
    const x = await chaos("KILL", "kill-at:apply");
    assert.equal((x.run as { signal: string }).signal, "SIGKILL");
    assert.equal((x.recovery as { exitCode: number }).exitCode, 0);
    assert.equal(x.verdict, "proven");
    const now = await stored("app/ck");
    assert.notEqual(now.username, old.username);
    assert.deepEqual(await keysOf("ck"), [`${old.username}:Active`, `${now.username}:Active`].sort(), "the new key and the old one (in its grace period): nothing else");
  });

  it("a second key made by hand before the rotation (the user at AWS's limit of two): target-timeout leaves it Active; the run names it in a warning", async () => {
    const old = await stored("app/hand");
    const hand = await newKey("hand");
    const x = await chaos("HAND", "target-timeout", ["--timeout", "100ms"]);
    assert.equal(x.rotation.status, "rolled-back");
    assert.deepEqual(await keysOf("hand"), [`${old.username}:Active`, `${hand.username}:Active`].sort(), "the hand-made key is neither deactivated nor deleted");
    assert.ok(x.rotation.warnings?.some((w) => w.includes(`credential ${hand.username} of "hand"`) && w.includes("left as it is")), JSON.stringify(x.rotation.warnings));
    assert.deepEqual(await stored("app/hand"), old);
  });

  it("no secret access key in any output, report or the history", () => {
    const text = outputs.join("\n") + readFileSync(join(dir, "dsops-rotation-history.jsonl"), "utf8");
    assert.ok(values.size >= 4);
    for (const v of values) assert.ok(!text.includes(v), "a secret access key is in an output or the history");
  });
});
