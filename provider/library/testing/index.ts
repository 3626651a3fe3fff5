/**
 * The contract suites every built-in store and rotation target passes, for plugin authors
 * (`@dsops/pulumi/testing`): call them from a mocha test file of the plugin.
 *
 *     const { storeContract, targetContract } = require("@dsops/pulumi/testing");
 *     storeContract("acme.kv", async () => ({ store, seed }));
 *
 * They use mocha's globals (describe, it, before, after): run them with mocha.
 */
export { storeContract, type ContractFixture } from "./store-contract";
export { stagingContract, type StagingFixture } from "./staging-contract";
export { targetContract, RotationBench, type TargetRow, type TargetFixture, type FailingVerification, type Cred } from "./target-contract";
export { dsops, dsopsRun, DSOPS_BIN, type CliResult } from "./cli";
