import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DSOPS_CMD, dsops } from "../support/cli";

const have = (shell: string) => spawnSync(shell, ["-c", "exit 0"], { stdio: "ignore" }).status === 0;

describe("dsops completion (scripts generated from the command tree)", function () {
  this.timeout(60000);
  let dir: string;
  const scripts: Record<string, string> = {};
  const script = (shell: "bash" | "zsh" | "fish") => {
    if (!scripts[shell]) {
      const r = dsops(["completion", shell], { cwd: dir });
      assert.equal(r.status, 0, r.stderr);
      scripts[shell] = join(dir, `dsops.${shell}`);
      writeFileSync(scripts[shell], r.stdout);
    }
    return scripts[shell];
  };

  /** What bash's completion offers for `line` (the last word being completed; a trailing space starts a new word). */
  const bashComplete = (line: string): string[] => {
    const words = line.split(" ");
    const prog = `source ${script("bash")}
COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; COMP_LINE='${line}'; COMP_POINT=${line.length}
_dsops; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const r = spawnSync("bash", ["--norc", "--noprofile", "-c", prog], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter(Boolean);
  };

  before(() => (dir = mkdtempSync(join(tmpdir(), "dsops-completion-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("bash: the script is valid (bash -n)", () => {
    const r = spawnSync("bash", ["-n", script("bash")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  });

  it("bash: completes commands, subcommands, options and option values", () => {
    assert.deepEqual(bashComplete("dsops re"), ["render", "report"]);
    assert.deepEqual(bashComplete("dsops g"), ["get", "guard"]);
    assert.ok(bashComplete("dsops secrets ").includes("set"));
    assert.deepEqual(bashComplete("dsops guard "), ["repo", "gitignore"]);
    assert.deepEqual(bashComplete("dsops leak re"), ["report", "resolve"]);
    assert.deepEqual(bashComplete("dsops render --f"), ["--format"]);
    assert.deepEqual(bashComplete("dsops render --format "), ["dotenv", "json", "yaml", "template"]);
    assert.deepEqual(bashComplete("dsops init --example "), ["aws", "vault", "gcp", "node", "go", "python"]);
    assert.deepEqual(bashComplete("dsops completion "), ["bash", "zsh", "fish", "powershell"]);
    // global options before the command, with their value skipped
    assert.deepEqual(bashComplete("dsops -c other.yaml pl"), ["plan"]);
    assert.deepEqual(bashComplete("dsops --config other.yaml plan --j"), ["--json"]);
    // a value option's value is not taken for a command
    assert.deepEqual(bashComplete("dsops plan --env render "), []);
    // options of the command include the global ones
    const opts = bashComplete("dsops guard repo --");
    for (const o of ["--staged", "--no-history", "--json", "--config", "--help"]) assert.ok(opts.includes(o), o);
    assert.ok(!opts.includes("--version"));
  });

  it("bash: loads with `source <(dsops completion bash)`", () => {
    const r = spawnSync("bash", ["--norc", "--noprofile", "-c", `source <(${DSOPS_CMD.map((a) => `"${a}"`).join(" ")} completion bash); COMP_WORDS=(dsops re); COMP_CWORD=1; _dsops; echo "\${COMPREPLY[@]}"; complete -p dsops`], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "render report\ncomplete -o default -F _dsops dsops\n");
  });

  it("zsh: the script is valid (zsh -n)", function () {
    if (!have("zsh")) this.skip();
    const r = spawnSync("zsh", ["-n", script("zsh")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  });

  it("fish: the script is valid and completes commands, subcommands and option values", function () {
    if (!have("fish")) this.skip();
    const complete = (line: string) => {
      const r = spawnSync("fish", ["--no-config", "-c", `source ${script("fish")}; complete -C '${line}'`], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout.split("\n").filter(Boolean).map((l) => l.split("\t")[0]);
    };
    assert.deepEqual(complete("dsops re"), ["render", "report"]);
    assert.ok(complete("dsops secrets ").includes("set"));
    assert.deepEqual(complete("dsops guard ").sort(), ["gitignore", "repo"]);
    assert.deepEqual(complete("dsops render --format ").sort(), ["dotenv", "json", "template", "yaml"]);
    assert.deepEqual(complete("dsops -c x.yaml pl"), ["plan"]);
  });

  it("an unknown shell is a usage error", () => {
    const r = dsops(["completion", "tcsh"], { cwd: dir });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /Allowed choices are bash, zsh, fish/);
  });

  // PowerShell is not in Debian's archive (Microsoft ships it from its own repository), so pwsh
  // cannot be installed here: the script's structure is asserted instead of running it.
  it("powershell: a Register-ArgumentCompleter script embedding the command tree", () => {
    const r = dsops(["completion", "powershell"], { cwd: dir });
    assert.equal(r.status, 0, r.stderr);
    const ps = r.stdout;
    assert.match(ps, /^Register-ArgumentCompleter -Native -CommandName 'dsops' -ScriptBlock \{\n    param\(\$wordToComplete, \$commandAst, \$cursorPosition\)$/m);
    assert.match(ps, /\[System\.Management\.Automation\.CompletionResult\]::new\(/);
    // Balanced braces and parentheses outside quoted strings.
    const bare = ps.replace(/'(?:[^']|'')*'/g, "''").replace(/"[^"\n]*"/g, '""').replace(/^#.*$/gm, "");
    for (const [open, close] of [["{", "}"], ["(", ")"]]) assert.equal(bare.split(open).length, bare.split(close).length, `unbalanced ${open}${close}`);
    /** The entries of one embedded hashtable: key → words. */
    const table = (name: string): Record<string, string[]> => {
      const m = new RegExp(`\\$${name} = @\\{\\n([\\s\\S]*?)\\n    \\}`).exec(ps);
      assert.ok(m, `no $${name} table`);
      return Object.fromEntries(
        m[1].split("\n").map((line) => {
          const e = /^ {8}'((?:[^']|'')*)' = @\((.*)\)$/.exec(line);
          assert.ok(e, `bad entry: ${line}`);
          return [e[1], [...e[2].matchAll(/'((?:[^']|'')*)'/g)].map((w) => w[1])];
        }),
      );
    };
    const subs = table("subcommands");
    for (const c of ["init", "plan", "exec", "secrets", "doctor", "login", "completion", "leak", "guard"]) assert.ok(subs[""].includes(c), c);
    assert.deepEqual(subs.guard, ["repo", "gitignore"]);
    const options = table("options");
    for (const f of ["--env", "--working-dir", "--config", "--debug", "--no-color", "--non-interactive", "--help"]) assert.ok(options.exec.includes(f), f);
    assert.ok(options["leak report"].includes("--severity"));
    const valued = table("valueOptions");
    assert.ok(valued.exec.includes("--working-dir") && valued.exec.includes("-c") && !valued.exec.includes("--print"));
    assert.deepEqual(table("choices")["render|--format"], ["dotenv", "json", "yaml", "template"]);
    assert.deepEqual(table("argumentChoices").completion, ["bash", "zsh", "fish", "powershell"]);
  });
});
