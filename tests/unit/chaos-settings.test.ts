import { strict as assert } from "node:assert";
import { parseConfig } from "../../provider/compose/config";
import { ConfigError } from "../../provider/core/errors";
import { chaosRefusal, looksLikeProduction, parseChaosFault } from "../../provider/rotation/index";

const problems = (text: string): string[] => {
  try {
    parseConfig(text, { label: "dsops.yaml" });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  return [];
};

describe("chaos settings: where chaos may run, and the faults it knows", () => {
  it("an env name reads as production when prod, production, prd or live is a word of it", () => {
    for (const e of ["prod", "Production", "eu-prod", "prod2", "PRD", "live", "liveDb", "app_live_db", "us.production.1"]) assert.equal(looksLikeProduction(e), true, e);
    for (const e of ["staging", "preprod", "qa", "dev", "test", "products", "delivery", "olive"]) assert.equal(looksLikeProduction(e), false, e);
  });

  it("chaos.envs: each entry an env of envs:, none named like production; the errors name the field", () => {
    const envs = "envs:\n  staging: {A: {literal: x}}\n  prod: {A: {literal: x}}\n";
    assert.deepEqual(problems(`${envs}chaos: {envs: [staging]}\n`), []);
    assert.deepEqual(problems(`${envs}chaos: {envs: [staging, prod, nope]}\n`), [
      'chaos.envs[1]: "prod" looks like production (prod, production, prd or live in its name): chaos is refused there; list only test and staging envs at dsops.yaml:4:25',
      "chaos.envs[2]: no env \"nope\" in envs: (envs: staging, prod) at dsops.yaml:4:31",
    ]);
    assert.match(problems(`${envs}chaos: {envs: []}\n`)[0], /^chaos\.envs: /);
    const rotated = "services:\n  db: {type: postgresql, host: h, admin: store://s/a}\nsecretStores:\n  s: {type: file, path: x.store}\nenvs:\n  staging:\n    A: {from: store://s/a, rotation: {service: db, strategy: single-user, user: app}}\n";
    assert.deepEqual(problems(`${rotated}chaos: {envs: [staging], experiments: {A: [kill-at:apply, verification-failure]}}\n`), []);
    assert.deepEqual(problems(`${rotated}chaos: {envs: [staging], experiments: {A: [kill-at:deploy], B: [target-timeout]}}\n`), [
      'chaos.experiments.A[0]: unknown step "deploy" in "kill-at:deploy": kill-at takes one of generate, stage, apply, verify, promote, retire, restore, discard; valid faults: store-write-failure, target-timeout, verification-failure, kill-at:generate, kill-at:stage, kill-at:apply, kill-at:verify, kill-at:promote, kill-at:retire, kill-at:restore, kill-at:discard at dsops.yaml:8:44',
      'chaos.experiments.B: no variable "B" with a rotation: block in the chaos envs (staging) at dsops.yaml:8:61',
    ]);
    assert.match(problems(`${envs}chaos: {envs: [staging], colour: red}\n`)[0], /^chaos\.colour: unknown key "colour" \(expected one of: envs, experiments\)/);
  });

  it("a run is refused outside chaos.envs and always in an env named like production", () => {
    assert.equal(chaosRefusal({ chaos: { envs: ["staging"] } }, "staging"), undefined);
    assert.match(chaosRefusal({}, "staging") ?? "", /env "staging" is not a chaos env: dsops.yaml has no chaos: block/);
    assert.match(chaosRefusal({ chaos: { envs: ["staging"] } }, "qa") ?? "", /env "qa" is not a chaos env: chaos.envs lists "staging"/);
    assert.match(chaosRefusal({ chaos: { envs: ["prod"] } }, "prod") ?? "", /env "prod" looks like production/);
  });

  it("fault names: the valid ones parse, the others are refused listing the valid ones", () => {
    assert.deepEqual(parseChaosFault("target-timeout", 1500), { kind: "target-timeout", ms: 1500 });
    assert.deepEqual(parseChaosFault("target-timeout:250"), { kind: "target-timeout", ms: 250 });
    assert.deepEqual(parseChaosFault(" kill-at:promote "), { kind: "kill-at", step: "promote" });
    assert.throws(() => parseChaosFault("kill-at:"), /unknown step "" in "kill-at:": kill-at takes one of generate, stage, apply, verify, promote, retire, restore, discard/);
    assert.throws(() => parseChaosFault("network-partition"), /unknown fault "network-partition"; valid faults: store-write-failure, target-timeout, verification-failure, kill-at:generate/);
  });
});
