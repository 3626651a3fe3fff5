import { resolve } from "node:path";
import { configFromObject, loadConfigFile, type Config } from "../compose/config";
import type { ComplianceReport } from "../report/types";
import { cached, providerConfig, state, zodFailures } from "./context";
import { complianceReportInputsSchema, type ComplianceReportInputs } from "./inputs";

/**
 * getComplianceReport: the compliance report of a dsops.yaml's rotated credentials, the same
 * JSON as `dsops report compliance --format json`, for a Pulumi program to export as a stack
 * output. A function, not a resource: a report is a read of the history and the stores' version
 * metadata with nothing to create or delete, and a function reads it afresh at every
 * `preview`/`up` instead of keeping a stale copy in state.
 */

export function validateComplianceArgs(args: Record<string, unknown>): Array<{ property: string; reason: string }> {
  const r = complianceReportInputsSchema.safeParse(args);
  return r.success ? [] : zodFailures(r.error.issues);
}

function configOf(inputs: ComplianceReportInputs): Config {
  if (inputs.configFile !== undefined) {
    const file = resolve(state.cwd, inputs.configFile);
    return cached(`file:${file}`, () => loadConfigFile(file, { label: inputs.configFile }));
  }
  if (inputs.config !== undefined) return cached(`env-inline:${state.cwd}:${JSON.stringify(inputs.config)}`, () => configFromObject(inputs.config, { dir: state.cwd, label: "config" }));
  // Neither: the stack's own configuration (the provider's dsops:configFile).
  return providerConfig();
}

/** The report, and its JSON text exactly as the CLI writes it. */
export async function readComplianceReport(args: Record<string, unknown>): Promise<{ report: ComplianceReport; json: string }> {
  const inputs = complianceReportInputsSchema.parse(args);
  const { complianceReportOf } = require("../compose/compliance") as typeof import("../compose/compliance");
  const { renderReport } = require("../report/formats") as typeof import("../report/formats");
  const options = { framework: inputs.framework, ...(inputs.env !== undefined ? { env: inputs.env } : {}) };
  if (inputs.policies === undefined) {
    const report = await complianceReportOf(configOf(inputs), options);
    return { report, json: renderReport(report, "json") };
  }
  // The stack's RotationPolicy resources (and the dsops.yaml given with configFile/config beside them).
  const { policiesComplianceReport } = require("../compose/compliance") as typeof import("../compose/compliance");
  const { fileStoreHistories } = require("../compose/governance-context") as typeof import("../compose/governance-context");
  const { policyReportSource } = require("./rotation-policy") as typeof import("./rotation-policy");
  const sources = inputs.policies.map((p, i) => policyReportSource(p.name, p.inputs, `policies[${i}].inputs`));
  const given = inputs.configFile !== undefined || inputs.config !== undefined ? configOf(inputs) : undefined;
  const { RotationEngine } = require("../rotation/engine") as typeof import("../rotation/engine");
  const engine = given ? new RotationEngine(given) : undefined;
  try {
    const report = await policiesComplianceReport(sources, {
      ...options,
      ...(engine ? { config: engine } : {}),
      waiversFrom: given ?? providerConfig(),
      extra: (e) => fileStoreHistories(e),
    });
    return { report, json: renderReport(report, "json") };
  } finally {
    await engine?.close();
  }
}
