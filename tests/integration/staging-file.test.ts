import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../provider/core/clock";
import { FileStore } from "../../provider/stores/file";
import { stagingContract } from "../support/staging-contract";

/** The file store's rotation stages (`current`/`previous`/`pending` fields) against the staging contract. */
describe("file store staging", () => {
  let dir: string;
  stagingContract(
    "file",
    async () => {
      dir = mkdtempSync(join(tmpdir(), "dsops-staging-file-"));
      return { store: new FileStore("local", { type: "file", path: join(dir, "secrets.store") }, { configDir: dir, clock: systemClock, env: { DSOPS_FILE_KEY: "staging-test-key" } }) };
    },
    async () => rmSync(dir, { recursive: true, force: true }),
  );
});
