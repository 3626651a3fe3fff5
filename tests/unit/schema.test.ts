import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { z } from "zod";
import { complianceReportInputsSchema, environmentInputsSchema, maintenanceWindowInputsSchema, resourceOutputs, rotationPolicyInputsSchema, secretReferenceInputsSchema } from "../../provider/dynamic/inputs";
import { functionNames, resourceTypes, schemaToken } from "../../sdk/tokens";

const schema = JSON.parse(readFileSync(join(__dirname, "..", "..", "..", "schema.json"), "utf8"));

const inputSchemas: Record<(typeof resourceTypes)[number], z.ZodObject> = {
  SecretReference: secretReferenceInputsSchema as unknown as z.ZodObject,
  Environment: environmentInputsSchema as unknown as z.ZodObject,
  MaintenanceWindow: maintenanceWindowInputsSchema as unknown as z.ZodObject,
  RotationPolicy: rotationPolicyInputsSchema as unknown as z.ZodObject,
};

function requiredKeys(s: z.ZodObject): string[] {
  return Object.entries(s.shape)
    .filter(([, v]) => !(v as z.ZodType).safeParse(undefined).success)
    .map(([k]) => k)
    .sort();
}

describe("schema.json agrees with the zod definitions", () => {
  it("has exactly the resources and functions the SDK exports", () => {
    assert.deepEqual(Object.keys(schema.resources).sort(), resourceTypes.map(schemaToken).sort());
    assert.deepEqual(Object.keys(schema.functions).sort(), functionNames.map(schemaToken).sort());
  });

  for (const type of resourceTypes) {
    it(`${type}: same inputs, required inputs, outputs and secret flags`, () => {
      const res = schema.resources[schemaToken(type)];
      const zod = inputSchemas[type];
      assert.deepEqual(Object.keys(res.inputProperties).sort(), Object.keys(zod.shape).sort());
      assert.deepEqual([...(res.requiredInputs ?? [])].sort(), requiredKeys(zod));
      const outputs = resourceOutputs[type] as Record<string, { secret: boolean }>;
      assert.deepEqual(Object.keys(res.properties).sort(), [...Object.keys(zod.shape), ...Object.keys(outputs)].sort());
      for (const [name, o] of Object.entries(outputs)) assert.equal(res.properties[name].secret === true, o.secret, `${type}.${name} secret flag`);
      for (const p of Object.values(res.properties) as Array<{ description?: string }>) assert.ok(p.description, "every property is described");
    });
  }

  it("functions take the same inputs as their resources", () => {
    assert.deepEqual(Object.keys(schema.functions[schemaToken("getSecret")].inputs.properties).sort(), Object.keys(inputSchemas.SecretReference.shape).sort());
    assert.deepEqual(Object.keys(schema.functions[schemaToken("getEnvironment")].inputs.properties).sort(), Object.keys(inputSchemas.Environment.shape).sort());
    assert.equal(schema.functions[schemaToken("getSecret")].outputs.properties.value.secret, true);
  });

  it("getComplianceReport: the same inputs as its zod schema, nothing secret, every property described", () => {
    const fn = schema.functions[schemaToken("getComplianceReport")];
    const zod = complianceReportInputsSchema as unknown as z.ZodObject;
    assert.deepEqual(Object.keys(fn.inputs.properties).sort(), Object.keys(zod.shape).sort());
    assert.deepEqual([...(fn.inputs.required ?? [])].sort(), requiredKeys(zod));
    assert.deepEqual(Object.keys(fn.outputs.properties).sort(), ["json", "report"]);
    for (const p of [...Object.values(fn.inputs.properties), ...Object.values(fn.outputs.properties)] as Array<{ description?: string; secret?: boolean }>) {
      assert.ok(p.description, "every property is described");
      assert.notEqual(p.secret, true, "a report holds no value");
    }
  });
});
