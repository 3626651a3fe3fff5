import { strict as assert } from "node:assert";
import { ConfigError } from "../../provider/core/errors";
import { coreConfigRules, createConfigLoader } from "../../provider/engine/config/load";
import { parseConfig } from "../../provider/compose/config";

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `a ConfigError, not ${String(e)}`);
    return e.problems;
  }
  assert.fail("the configuration loaded");
};

describe("layers: the composed dsops.yaml schema", () => {
  it("the library API (@dsops/pulumi/provider/engine/index) loads with the composed schema and the rotation checks", () => {
    const path = require.resolve("@dsops/pulumi/provider/engine/index");
    assert.match(path, /dist[/\\]provider[/\\]library[/\\]index\.js$/);
    const lib = require("@dsops/pulumi/provider/engine/index") as typeof import("../../provider/library/index");
    const text = "secretStores:\n  s: {type: env}\nenvs:\n  dev:\n    A:\n      from: store://s/k\n      rotation: {service: nope, user: app}\n";
    assert.deepEqual(problemsOf(() => lib.parseConfig(text)), ['envs.dev.A.rotation.service: unknown service "nope" (no services: are defined) at config:7:27']);
  });

  it("lays the features' sections in the documented order", () => {
    assert.deepEqual(problemsOf(() => parseConfig("colour: red\n", { label: "dsops.yaml" })), [
      'colour: unknown key "colour" (expected one of: version, secretStores, providers, services, transforms, envs, templates, policies, notifications, metrics, rotation, plugins, chaos, chains, compliance, resolver) at dsops.yaml:1:1',
    ]);
    assert.deepEqual(problemsOf(() => parseConfig("envs:\n  dev:\n    A:\n      literal: x\n      rotation: {service: db, colour: red}\n", { label: "dsops.yaml" }))[0],
      'envs.dev.A.rotation.colour: unknown key "colour" (expected one of: service, strategy, user, users, generator, verification, grace_period, schedule, ttl, windows, reason, history, approval, notifications, health, monitor, rollout, cutover, constraints) at dsops.yaml:5:31');
  });

  it("the engine's loader alone knows no feature: notifications:, metrics: and rotation: are unknown to it", () => {
    const core = createConfigLoader(coreConfigRules);
    assert.deepEqual(problemsOf(() => core.parseConfig("notifications: {}\nenvs:\n  dev:\n    A: {literal: x, rotation: {service: db}}\n", { label: "dsops.yaml" })), [
      'envs.dev.A.rotation: unknown key "rotation" (expected one of: literal, from, transform, optional, description, service, metadata) at dsops.yaml:4:21',
      'notifications: unknown key "notifications" (expected one of: version, secretStores, providers, services, transforms, envs, templates, policies, resolver) at dsops.yaml:1:1',
    ]);
  });
});
