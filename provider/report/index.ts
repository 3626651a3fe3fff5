/** Compliance reports (PCI-DSS v4.0, SOC 2) from the configuration, the rotation history and the stores' version metadata: never a value. */
export { buildComplianceReport, controlCatalogue } from "./build";
export { governanceEvents } from "./governance";
export { renderReport, reportFormats, type ReportFormat } from "./formats";
export { complianceSchema, controlIds, waiverSchema, waiverExpiresAt, type ComplianceSettings, type ControlId, type Waiver } from "./settings";
export * from "./types";
