import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startMoto, type Moto } from "../support/moto";
import { PulumiProject, pulumiBinDir } from "../support/pulumi";

/**
 * examples/aws as its README says to try it: moto_server standing in for AWS, the README's own
 * commands (the real `aws` CLI, then the real Pulumi CLI), in an environment with no AWS region
 * nor AWS configuration of its own, so that the README must say everything that is needed.
 */
const EXAMPLE = join(__dirname, "..", "..", "..", "examples", "aws");

/** The README's block that tries the example against moto, as a script for this test's moto and a non-interactive `pulumi up`. */
function readmeScript(endpoint: string): string {
  const readme = readFileSync(join(EXAMPLE, "README.md"), "utf8");
  const block = [...readme.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]).find((b) => b.includes("moto_server"));
  assert.ok(block, "the README has a block that starts moto_server");
  return block
    .split("\n")
    .filter((l) => !l.startsWith("moto_server")) // the test runs its own, on a free port
    .map((l) => l.replaceAll("http://127.0.0.1:5000", endpoint).replace(/^pulumi up$/, "pulumi up --yes --skip-preview"))
    .join("\n");
}

describe("examples/aws, following its README (moto, the aws CLI, the Pulumi CLI)", function () {
  this.timeout(600000);
  let moto: Moto;
  let project: PulumiProject;

  before(async () => {
    pulumiBinDir();
    moto = await startMoto();
  });
  after(async () => {
    await moto?.stop();
    project?.cleanup();
  });

  it("the README's commands run as written and the program reads the secrets", () => {
    project = new PulumiProject("example-aws", readFileSync(join(EXAMPLE, "index.js"), "utf8"));
    project.write("dsops.yaml", readFileSync(join(EXAMPLE, "dsops.yaml"), "utf8"));
    const env: NodeJS.ProcessEnv = { ...project.env, AWS_CONFIG_FILE: join(project.dir, "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE: join(project.dir, "no-aws-credentials") };
    for (const k of Object.keys(env)) if (/^AWS_(REGION|DEFAULT_REGION|PROFILE|ENDPOINT_URL.*|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)$/.test(k)) delete env[k];
    const r = spawnSync("bash", ["-euo", "pipefail", "-c", readmeScript(moto.endpoint)], { cwd: project.dir, env, encoding: "utf8", timeout: 300000 });
    const text = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.status, 0, `the README's commands failed (${r.status}):\n${text.slice(-3000)}`);
    const out = project.secretOutputs();
    assert.equal(out.apiKey, "example-api-key");
    assert.ok(typeof out.dbPasswordVersion === "string" && typeof out.previousVersion === "string");
    assert.notEqual(out.dbPasswordVersion, out.previousVersion, "the pinned AWSPREVIOUS is the first version");
    for (const v of ["first-password", "second-password", "example-api-key"]) assert.ok(!text.includes(v), `a secret value was printed (${v})`);
    assert.deepEqual(project.previewSummary({ AWS_ENDPOINT_URL: moto.endpoint, AWS_DEFAULT_REGION: "us-east-1", AWS_ACCESS_KEY_ID: "test", AWS_SECRET_ACCESS_KEY: "test" }), { same: 4 });
  });
});
