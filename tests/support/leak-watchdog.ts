/**
 * Mocha global teardown (loaded by .mocharc.json's `require`): mocha runs without `--exit`, so a
 * server or child process a test forgot to stop keeps the run alive after its summary, for ever
 * on CI. Once every test has ended, this gives the run `graceMs` to exit by itself; if it has
 * not, it lists what is still open and ends the process, failing the run when it would have
 * passed: a leak is a bug of the tests, and a hang must never be what CI sees.
 */
const graceMs = Number(process.env.DSOPS_LEAK_GRACE_MS ?? 60_000);

export function mochaGlobalTeardown(): void {
  setTimeout(() => {
    const open = process.getActiveResourcesInfo().filter((r) => r !== "Timeout");
    process.stderr.write(
      `\nleak-watchdog: the test run was still alive ${graceMs / 1000} s after its last test; open resources: ${open.join(", ") || "(none listed)"}.\n` +
        "A test left a server, child process or socket open: stop it in an after/afterEach hook (tests/support/server.ts has startAll for before hooks that start several).\n",
    );
    // Mocha sets the exit code (its failure count) in an `exit` listener of its own, added when
    // the run ended: this one, added later, runs after it.
    process.on("exit", () => {
      if (!process.exitCode) process.exitCode = 1;
    });
    process.exit();
  }, graceMs).unref();
}
