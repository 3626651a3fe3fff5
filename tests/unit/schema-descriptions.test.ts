import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { z } from "zod";
import { healthCheckSchema } from "../../provider/health/settings";
import { rolloutCloudDiscoverySchema, rolloutEndpointDiscoverySchema, rolloutKubernetesDiscoverySchema } from "../../provider/rotation/rollout/settings";
import { storeFactories } from "../../provider/stores/registry";

const ROOT = join(__dirname, "..", "..", "..");
const schema = JSON.parse(readFileSync(join(ROOT, "schema.json"), "utf8")) as {
  types: Record<string, { properties: Record<string, { description?: string }> }>;
  resources: Record<string, { inputProperties: Record<string, { description?: string }> }>;
};

/** The `type` literal of an object schema. */
const typeOf = (s: z.ZodType): string => (s as unknown as { _zod: { def: { shape: { type: { _zod: { def: { values: string[] } } } } } } })._zod.def.shape.type._zod.def.values[0];
const healthTypes = (healthCheckSchema as unknown as { _zod: { def: { options: z.ZodType[] } } })._zod.def.options.map(typeOf);
const discoveryTypes = [rolloutKubernetesDiscoverySchema, rolloutCloudDiscoverySchema, rolloutEndpointDiscoverySchema].map((s) => typeOf(s as unknown as z.ZodType));

/** `name` as a whole word of `text` (`aws` is not found in `aws.sts`; a sentence's full stop may follow). */
const names = (text: string, name: string) => new RegExp(`(?<![\\w.])${name.replace(/[.]/g, "\\.")}(?!\\w|\\.\\w)`).test(text);
const missing = (text: string, list: readonly string[]) => list.filter((n) => !names(text, n));

/** Every input property of that name, in every resource of schema.json. */
const inputDescriptions = (prop: string) =>
  Object.entries(schema.resources)
    .filter(([, r]) => r.inputProperties[prop])
    .map(([token, r]) => [token, r.inputProperties[prop].description ?? ""] as const);

describe("schema.json and the SDK's doc comments name every type the code knows", () => {
  it("the inline store configuration's `type` names every registered store type", () => {
    assert.deepEqual(missing(schema.types["dsops:index:StoreConfig"].properties.type.description ?? "", Object.keys(storeFactories)), []);
  });

  it("every `health` input names every health check type", () => {
    assert.ok(healthTypes.length >= 14, healthTypes.join(", "));
    const found = inputDescriptions("health");
    assert.ok(found.length > 0);
    for (const [token, d] of found) assert.deepEqual(missing(d, healthTypes), [], token);
  });

  it("every `rollout` input names every discovery type", () => {
    assert.deepEqual(discoveryTypes, ["kubernetes", "cloud", "endpoint"]);
    const found = inputDescriptions("rollout");
    assert.ok(found.length > 0);
    for (const [token, d] of found) assert.deepEqual(missing(d, discoveryTypes), [], token);
  });

  it("the RotationPolicy doc comments (sdk/index.ts, provider/dynamic/inputs.ts) name every health check type", () => {
    for (const file of ["sdk/index.ts", "provider/dynamic/inputs.ts"]) {
      const text = readFileSync(join(ROOT, file), "utf8");
      const comment = /\/\*\*((?:(?!\*\/)[\s\S])*?Health checks once the new credential is current[\s\S]*?)\*\//.exec(text);
      assert.ok(comment, `${file}: the health input's doc comment`);
      assert.deepEqual(missing(comment[1].replace(/`/g, " "), healthTypes), [], file);
    }
  });
});
