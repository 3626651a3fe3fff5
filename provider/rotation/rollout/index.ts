/** Gradual rollout of one credential to many instances of a service (see ./settings.ts and ./plan.ts; the engine runs it). */
export * from "./settings";
export * from "./plan";
