// The optional single executable (`npm run test:bin` sets DSOPS_CLI_BIN): what it leaves out says so,
// and a store SDK it embeds runs from inside it. No server: the gcp store dials a closed port.
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DSOPS_CLI_BIN, dsops } from "../support/cli";
import { freePort } from "../support/server";

describe("the single executable of dsops (DSOPS_CLI_BIN)", function () {
  this.timeout(60000);
  let dir: string;
  before(async function () {
    if (!DSOPS_CLI_BIN) this.skip();
    dir = mkdtempSync(join(tmpdir(), "dsops-bin-"));
    const closed = await freePort();
    writeFileSync(
      join(dir, "dsops.yaml"),
      `version: 1
secretStores:
  bws: { type: bitwarden-sm, organization_id: 00000000-0000-0000-0000-000000000000 }
  op: { type: onepassword, mode: service_account }
  gcp: { type: gcp.secretmanager, project_id: p, endpoint: "127.0.0.1:${closed}", insecure: true, retries: 0 }
envs:
  bws:
    A: { from: "store://bws/a" }
  op:
    A: { from: "store://op/op://vault/item/field" }
  gcp:
    A: { from: "store://gcp/a" }
`,
    );
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  const env = { BWS_ACCESS_TOKEN: "0.00000000-0000-0000-0000-000000000000.bin-test-token:c2VjcmV0", OP_SERVICE_ACCOUNT_TOKEN: "ops_bin-test-token" };

  for (const [store, pkg] of [
    ["bws", "@bitwarden/sdk-napi"],
    ["op", "@1password/sdk"],
  ] as const)
    it(`a ${store} store (${pkg}) fails with exit 1, naming the store and the npm install of dsops`, () => {
      const r = dsops(["get", "--env", store, "--var", "A"], { cwd: dir, env });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`store "${store}".*not available in the single executable of dsops: ${pkg.replace("/", "\\/")}`));
      assert.match(r.stderr, /npm install of dsops/);
      assert.doesNotMatch(r.stderr, /bin-test-token/);
      assert.equal(r.stdout, "");
    });

  it("the gcp store's client library runs from inside it: a refused connection, not a missing module", () => {
    const r = dsops(["get", "--env", "gcp", "--var", "A"], { cwd: dir, env: { GOOGLE_APPLICATION_CREDENTIALS: "", ...env } });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /store "gcp"/);
    assert.doesNotMatch(r.stderr, /Cannot find module|MODULE_NOT_FOUND/);
  });
});
