import { strict as assert } from "node:assert";
import { durationMs, durationSchema, formatDuration, parseDuration, tryParseDuration } from "../../provider/core/duration";
import { parseDuration as cliParseDuration } from "../../provider/cli/util";
import { monitorSchema } from "../../provider/health/settings";
import { durationMs as graceMs } from "../../provider/rotation/strategies";
import { parseConfig } from "../../provider/compose/config";
import { Window } from "../../provider/schedule/window";

describe("durations: one grammar everywhere", () => {
  const cases: [string, number][] = [
    ["500ms", 500],
    ["30s", 30_000],
    ["15m", 900_000],
    ["1h30m", 5_400_000],
    ["1h 30m", 5_400_000],
    ["7d", 604_800_000],
    ["2w", 1_209_600_000],
    ["1.5h", 5_400_000],
    ["90", 90_000],
  ];

  it("parses every form the same way in the kernel, the CLI flags, health settings and grace periods", () => {
    for (const [text, ms] of cases) {
      assert.equal(parseDuration(text, "x"), ms, text);
      assert.equal(cliParseDuration(text, "--ttl"), ms, text);
      assert.equal(durationMs(durationSchema.parse(text)), ms, text);
      assert.equal(durationMs(monitorSchema.parse({ period: text }).period), ms, text);
      assert.equal(graceMs(text, 1), ms, text);
    }
  });

  it("refuses what is not a duration, naming the field, with the grammar as hint", () => {
    for (const bad of ["", "4 hours", "1x", "h", "-5s", "1h30", "30 s s"]) {
      assert.equal(tryParseDuration(bad), undefined, bad);
      assert.throws(() => parseDuration(bad, "rotation.grace_period"), (e: Error & { hint?: string }) => {
        assert.equal(e.message, `rotation.grace_period: "${bad}" is not a duration`);
        assert.match(String(e.hint), /1h30m/);
        return true;
      });
      assert.equal(durationSchema.safeParse(bad).success, false, bad);
    }
    assert.throws(() => parseDuration("0s", "--ttl"), /^DsopsError: --ttl: "0s" must be longer than zero$/);
    assert.equal(parseDuration("0s", "monitor.period", { allowZero: true }), 0);
  });

  it("numbers are seconds", () => {
    assert.equal(durationMs(90), 90_000);
    assert.equal(durationMs(0), 0);
  });

  it("formats back into the shortest form of the same grammar", () => {
    for (const ms of [250, 1000, 90_000, 5_400_000, 604_800_000, 694_800_000]) assert.equal(parseDuration(formatDuration(ms)), ms, String(ms));
    assert.equal(formatDuration(5_400_000), "1h30m");
    assert.equal(formatDuration(250), "250ms");
  });

  it("grace_period: 1h30m is accepted in dsops.yaml like monitor.period: 1h30m (it was refused)", () => {
    const c = parseConfig(
      `version: 1
secretStores:
  local: { type: file }
services:
  api: { type: webhook, url: "http://127.0.0.1:1/rotate" }
envs:
  prod:
    KEY:
      from: store://local/api/key
      rotation: { service: api, strategy: two-secret, grace_period: 1h30m, user: svc }
`,
      { file: "/x/dsops.yaml", label: "dsops.yaml", env: {} },
    );
    assert.ok(c);
  });

  it("a maintenance window takes the same grammar for its duration", () => {
    assert.equal(new Window({ schedule: "0 2 * * *", duration: "1h30m" }).durationMs, 5_400_000);
  });
});
