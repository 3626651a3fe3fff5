import { strict as assert } from "node:assert";
import { parseConfig } from "../../provider/compose/config";
import { ConfigError } from "../../provider/core/errors";

/** The problems of a dsops.yaml whose one env variable's rotation has these health checks. */
function healthProblems(checks: string): string[] {
  const text = `envs:\n  dev:\n    A:\n      literal: x\n      rotation: {service: db, health: [${checks}]}\n`;
  try {
    parseConfig(text, { label: "dsops.yaml" });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail("the configuration loaded");
}

describe("config: an unknown key in a union member is told against the member its type selects", () => {
  it("an http health check lists and suggests the http check's keys, not the first member's (sql)", () => {
    assert.deepEqual(healthProblems('{type: http, url: "http://127.0.0.1:1/h", colour: red}'), [
      'envs.dev.A.rotation.health[0].colour: unknown key "colour" (expected one of: name, timeout_ms, type, url, method, headers, expect_status, max_latency_ms, body_match) at dsops.yaml:5:82',
    ]);
    assert.deepEqual(healthProblems('{type: http, url: "http://127.0.0.1:1/h", body_mach: x}'), [
      'envs.dev.A.rotation.health[0].body_mach: unknown key "body_mach" (did you mean "body_match"?) at dsops.yaml:5:82',
    ]);
  });

  it("a connection health check lists and suggests the connection check's keys", () => {
    assert.deepEqual(healthProblems("{type: connection, colour: red}"), [
      'envs.dev.A.rotation.health[0].colour: unknown key "colour" (expected one of: name, timeout_ms, type, max_connect_ms) at dsops.yaml:5:59',
    ]);
    assert.deepEqual(healthProblems("{type: connection, max_conect_ms: 5}"), [
      'envs.dev.A.rotation.health[0].max_conect_ms: unknown key "max_conect_ms" (did you mean "max_connect_ms"?) at dsops.yaml:5:59',
    ]);
  });

  it("each check of a list is told against its own type; the sql check keeps its keys", () => {
    assert.deepEqual(healthProblems('{type: sql, colour: red}, {type: http, url: "http://127.0.0.1:1/h", colour: red}'), [
      'envs.dev.A.rotation.health[0].colour: unknown key "colour" (expected one of: name, timeout_ms, type, query) at dsops.yaml:5:52',
      'envs.dev.A.rotation.health[1].colour: unknown key "colour" (expected one of: name, timeout_ms, type, url, method, headers, expect_status, max_latency_ms, body_match) at dsops.yaml:5:108',
    ]);
  });
});
