/**
 * The one place that maps the package's schema tokens to the type tokens the dynamic
 * resources register (`pulumi-nodejs:dynamic/<module>:<type>`).
 */
export const MODULE = "dsops";

export const resourceTypes = ["SecretReference", "Environment", "MaintenanceWindow", "RotationPolicy"] as const;
export type ResourceTypeName = (typeof resourceTypes)[number];

export const functionNames = ["getSecret", "getEnvironment", "getComplianceReport"] as const;

/** `dsops:index:SecretReference`, the token in schema.json. */
export function schemaToken(type: ResourceTypeName | (typeof functionNames)[number]): string {
  return `${MODULE}:index:${type}`;
}

/** `pulumi-nodejs:dynamic/dsops:SecretReference`, the type in Pulumi state and previews. */
export function dynamicToken(type: ResourceTypeName): string {
  return `pulumi-nodejs:dynamic/${MODULE}:${type}`;
}
