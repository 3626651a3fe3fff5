import { existsSync, statSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { Option, type Command } from "commander";
import { DsopsError } from "../../core/errors";
import { loadConfig } from "../util";

/**
 * `dsops report compliance`: the compliance report (PCI-DSS v4.0, SOC 2) of the configuration's
 * rotated credentials, from the rotation history, the rotation policies and the stores' version
 * metadata (never a value), written atomically to `--out` as HTML, JSON, CSV or Markdown.
 */

const FRAMEWORKS = ["pci-dss", "soc2", "all"] as const;
const FORMATS = ["html", "json", "csv", "md"] as const;

interface Options {
  framework: (typeof FRAMEWORKS)[number];
  format?: (typeof FORMATS)[number];
  out: string;
  env?: string;
  strict?: boolean;
}

/** The format named by --format, else by the file's extension (.html, .json, .csv, .md), else HTML. */
function formatOf(o: Options): (typeof FORMATS)[number] {
  if (o.format) return o.format;
  const ext = extname(o.out).slice(1).toLowerCase();
  if (ext === "htm") return "html";
  if (ext === "markdown") return "md";
  return (FORMATS as readonly string[]).includes(ext) ? (ext as (typeof FORMATS)[number]) : "html";
}

export function register(program: Command): void {
  const report = program.command("report").description("reports built from the configuration and the rotation history (never a value)");
  report
    .command("compliance")
    .description("compliance report of every rotated credential: owner, age, last rotation, policy and a verdict per PCI-DSS v4.0 / SOC 2 control, waivers listed")
    .addOption(new Option("--framework <framework>", "controls of this framework").choices(FRAMEWORKS).default("all"))
    .addOption(new Option("--format <format>", "output format (default: from --out's extension, else html)").choices(FORMATS))
    .requiredOption("--out <file>", "file to write (atomically: a complete report or none); its folder must exist")
    .option("-e, --env <env>", "only this env")
    .option("--strict", "exit 1 when a control fails without an active waiver (the report is written all the same)")
    .action(async (o: Options, cmd: Command) => {
      const out = resolve(o.out);
      const dir = dirname(out);
      if (!existsSync(dir)) throw new DsopsError(`--out ${o.out}: the folder ${dir} does not exist`, { hint: "create it first, or write the report elsewhere" });
      if (!statSync(dir).isDirectory()) throw new DsopsError(`--out ${o.out}: ${dir} is not a folder`);
      if (existsSync(out) && statSync(out).isDirectory()) throw new DsopsError(`--out ${o.out}: is a folder; give a file name`);
      const format = formatOf(o);
      const config = loadConfig(cmd);
      const { complianceReportOf } = require("../../compose/compliance") as typeof import("../../compose/compliance");
      const { renderReport } = require("../../report/formats") as typeof import("../../report/formats");
      const report = await complianceReportOf(config, { framework: o.framework, ...(o.env ? { env: o.env } : {}) });
      const text = renderReport(report, format);
      const { writeFileAtomic, fsErrorCode, fsErrorText } = require("../../core/fsutil") as typeof import("../../core/fsutil");
      try {
        writeFileAtomic(out, text, 0o644);
      } catch (e) {
        if (!fsErrorCode(e)) throw e;
        throw new DsopsError(`--out ${o.out}: cannot write the report: ${fsErrorText(e)}`, { hint: "nothing was written; check the folder's permissions and free space" });
      }
      const s = report.summary;
      process.stderr.write(
        `dsops: ${format} compliance report written to ${o.out}: ${s.credentials} credential(s), ${s.compliant} compliant, ${s.failing} failing; controls ${s.controls.pass} passed, ${s.controls.fail} failed, ${s.controls.waived} waived; waivers ${s.waivers.active} active, ${s.waivers.expired} expired\n`,
      );
      if (o.strict && s.controls.fail > 0) {
        process.exitCode = 1;
        process.stderr.write(`dsops: --strict: ${s.controls.fail} control failure(s) without an active waiver\n`);
      }
    });
}
