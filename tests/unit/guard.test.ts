import { strict as assert } from "node:assert";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { IgnoreList, scanText, findSecrets, ruleIds } from "../../provider/guard/index";

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const pick = (n: number) => Array.from(randomBytes(n), (b) => ALNUM[b % ALNUM.length]).join("");

describe("guard library API (@dsops/pulumi/provider/guard/index)", () => {
  it("scanText runs our format rules, then secretlint's preset, then our weak rules, and never returns a value", async () => {
    const gh = "ghp_" + pick(36);
    const npm = "npm_" + pick(36);
    const findings = await scanText(`a: ${gh}\nexport NPM_TOKEN=${npm}\nplain text\n`, "ci/deploy.sh");
    assert.deepEqual(
      findings.map((f) => [f.line, f.rule, f.masked]),
      [
        [1, "github-token", "ghp_****************"],
        [2, "@secretlint/secretlint-rule-npm", "npm_****************"],
      ],
    );
    const json = JSON.stringify(findings);
    assert.ok(!json.includes(gh) && !json.includes(npm), "a finding holds no secret");
  });

  it("findSecrets (synchronous, our rules only) still finds the formats it knows", () => {
    assert.deepEqual(findSecrets(`k = AKIA${pick(16).toUpperCase()}`).map((m) => m.rule), ["aws-access-key-id"]);
  });

  it("IgnoreList: .gitignore semantics (negation, folders, **, anchoring) and rule: lines", () => {
    const list = new IgnoreList("*.env\n!keep.env\nbuild/\n!build/keep.txt\ndocs/**/*.md\n/root.txt\nrule: jwt\nrule: nope\n", ruleIds);
    const ignored = ["a.env", "sub/b.env", "build/out.txt", "build/keep.txt", "docs/a/b/c.md", "root.txt", ".dsopsignore"];
    const kept = ["keep.env", "docs/top.txt", "sub/root.txt", "src/build.ts"];
    assert.deepEqual(ignored.filter((f) => !list.ignores(f)), []);
    assert.deepEqual(kept.filter((f) => list.ignores(f)), []);
    assert.deepEqual([...list.disabledRules], ["jwt"]);
    assert.match(list.problems[0], /^\.dsopsignore:8: unknown rule "nope"/);
  });

  it("the engine's index does not load the guard (an ops layer above it)", () => {
    const engineIndex = require.resolve("../../provider/engine/index");
    const guardDir = join(__dirname, "..", "..", "provider", "guard");
    const { spawnSync } = require("node:child_process") as typeof import("node:child_process");
    const r = spawnSync(process.execPath, ["-e", `require(${JSON.stringify(engineIndex)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)))`], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const loaded = JSON.parse(r.stdout) as string[];
    assert.ok(loaded.length > 1);
    assert.deepEqual(loaded.filter((p) => p.startsWith(guardDir) || /@secretlint|node_modules[\\/]ignore[\\/]/.test(p)), []);
  });
});
