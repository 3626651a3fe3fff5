import { userInfo } from "node:os";
import { Option, type Command } from "commander";
import { IncidentBook, incidentStatuses, severities, type Incident, type IncidentStatus, type Severity } from "../../guard/incidents";
import { DsopsError } from "../../core/errors";
import { EXIT, commandGroup, configDir, printJson, table, withResolver } from "../util";

/** `leak report --notify`: the record is kept whatever happens; a channel that failed is exit 1. */
async function notifyIncident(cmd: Command, inc: Incident): Promise<void> {
  const { sendIncident } = require("../../notify/incident") as typeof import("../../notify/incident");
  const { parseStoreUri } = require("../../engine/refs") as typeof import("../../engine/refs");
  const { clock } = require("../../core/clock") as typeof import("../../core/clock");
  const results = await withResolver(cmd, async (r) => {
    const settings = r.config.raw.notifications;
    if (!settings) throw new DsopsError(`${inc.id} is recorded, but no notification channel is configured`, { hint: "add notifications: (slack, email, pagerduty, webhooks) to dsops.yaml" });
    return sendIncident(
      settings,
      { id: inc.id, status: inc.status, severity: inc.severity, summary: inc.summary, ...(inc.type ? { type: inc.type } : {}), ...(inc.description ? { description: inc.description } : {}), secrets: inc.secrets, ...(inc.files ? { files: inc.files } : {}), ...(inc.commits ? { commits: inc.commits } : {}), created: inc.created, by: inc.notes[0]?.by ?? who() },
      { clock: clock(), configDir: r.config.dir, resolveSetting: async (v) => (v.startsWith("store://") ? (await r.resolveRef(parseStoreUri(v))).value.reveal() : v) },
    );
  });
  for (const d of results) process.stderr.write(`${d.ok ? "notified" : "error: not notified"} ${d.channel}: ${d.detail}\n`);
  if (!results.some((d) => d.ok)) {
    if (!results.length) process.stderr.write("error: no enabled notification channel\n");
    process.exitCode = EXIT.user;
  } else if (results.some((d) => !d.ok)) process.exitCode = EXIT.user;
}

interface ReportOptions {
  summary?: string;
  title?: string;
  description?: string;
  type?: string;
  file?: string[];
  commit?: string[];
  severity: Severity;
  status: "open" | "investigating";
  secret?: string[];
  note?: string;
  notify?: boolean;
  json?: boolean;
}

function who(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? "unknown";
  }
}

function showIncident(i: Incident): string {
  const lines = [
    `${i.id}  ${i.status.toUpperCase()}  severity ${i.severity}`,
    `summary:  ${i.summary}`,
    ...(i.type ? [`type:     ${i.type}`] : []),
    ...(i.description ? [`description: ${i.description}`] : []),
    ...(i.files?.length ? [`files:    ${i.files.join(", ")}`] : []),
    ...(i.commits?.length ? [`commits:  ${i.commits.join(", ")}`] : []),
    `secrets:  ${i.secrets.length ? i.secrets.join(", ") : "-"}`,
    `created:  ${i.created}`,
    `updated:  ${i.updated}`,
    ...(i.resolved ? [`resolved: ${i.resolved}`] : []),
    "history:",
    ...i.notes.map((n) => `  ${n.at}  ${n.by}: ${n.text}${n.changes && n.text !== n.changes.join("; ") ? ` [${n.changes.join("; ")}]` : ""}`),
  ];
  return lines.join("\n") + "\n";
}

const severityOption = (desc: string, def?: Severity) => {
  const o = new Option("--severity <level>", desc).choices(severities);
  return def ? o.default(def) : o;
};

/** `dsops leak report|list|show|update|resolve`: incident records beside dsops.yaml. */
export function register(program: Command): void {
  const leak = commandGroup(program, "leak", "keep records of leaked secrets (.dsops/incidents/, names only, never values)");
  const book = (cmd: Command) => new IncidentBook(configDir(cmd));

  leak
    .command("report")
    .description("open an incident record")
    .option("--summary <text>", "what happened, in a line (never the value)")
    .option("--title <text>", "the same as --summary (dsops's name for it)")
    .option("--description <text>", "the longer account (never the value)")
    .option("--type <kind>", "what kind of secret leaked (api-key, password, certificate …)")
    .option("--file <paths...>", "files that held it")
    .option("--commit <ids...>", "commits that added it")
    .addOption(severityOption("how bad", "high"))
    .addOption(new Option("--status <status>", "initial status").choices(["open", "investigating"]).default("open"))
    .option("--secret <names...>", "names of the affected secrets (variables or store keys)")
    .option("--note <text>", "first note (default: reported)")
    .option("--notify", "send the incident through the configured notifications (Slack, email, PagerDuty, webhooks)")
    .option("--json", "print the record")
    .action(async (o: ReportOptions, cmd: Command) => {
      if (o.summary !== undefined && o.title !== undefined && o.summary !== o.title) cmd.error("error: --summary and --title are the same field; pass one", { exitCode: 2 });
      const summary = o.summary ?? o.title;
      if (summary === undefined) cmd.error("error: required option '--summary <text>' (or --title) not specified", { exitCode: 2 });
      const inc = book(cmd).create({
        summary,
        severity: o.severity,
        secrets: o.secret ?? [],
        ...(o.note !== undefined ? { note: o.note } : {}),
        ...(o.type !== undefined ? { type: o.type } : {}),
        ...(o.description !== undefined ? { description: o.description } : {}),
        ...(o.file ? { files: o.file } : {}),
        ...(o.commit ? { commits: o.commit } : {}),
        status: o.status,
        by: who(),
      });
      if (o.json) printJson(inc);
      else process.stdout.write(inc.id + "\n");
      process.stderr.write(`opened ${inc.id}; rotate the affected secrets, then: dsops leak resolve ${inc.id} --note "rotated …"\n`);
      if (o.notify) await notifyIncident(cmd, inc);
    });

  leak
    .command("list")
    .description("list incident records")
    .addOption(new Option("--status <status>", "which ones (open: not resolved, investigating included)").choices(["open", "investigating", "resolved", "all"]).default("all"))
    .option("--json", "machine-readable output")
    .action((o: { status: string; json?: boolean }, cmd: Command) => {
      const all = book(cmd)
        .list()
        .filter((i) => o.status === "all" || i.status === o.status || (o.status === "open" && i.status === "investigating"));
      if (o.json) {
        printJson({ incidents: all });
        return;
      }
      if (!all.length) {
        process.stderr.write(`no ${o.status === "all" ? "" : `${o.status} `}incidents\n`);
        return;
      }
      const rows = [["ID", "STATUS", "SEVERITY", "CREATED", "SECRETS", "SUMMARY"]];
      for (const i of all) rows.push([i.id, i.status, i.severity, i.created, i.secrets.join(",") || "-", i.summary]);
      process.stdout.write(table(rows));
    });

  leak
    .command("show")
    .description("show one incident with its history")
    .argument("<id>", "incident id (INC-0001, or 1)")
    .option("--json", "machine-readable output")
    .action((id: string, o: { json?: boolean }, cmd: Command) => {
      const inc = book(cmd).get(id);
      if (o.json) printJson(inc);
      else process.stdout.write(showIncident(inc));
    });

  leak
    .command("update")
    .description("add a note, change the severity or summary, add affected secrets")
    .argument("<id>", "incident id")
    .option("--note <text>", "a note for the history")
    .addOption(severityOption("new severity"))
    .option("--summary <text>", "new summary")
    .option("--secret <names...>", "more affected secrets (names)")
    .option("--reopen", "reopen a resolved incident")
    .addOption(new Option("--status <status>", "set the status (investigating: someone is on it)").choices(incidentStatuses).conflicts("reopen"))
    .option("--json", "print the record")
    .action((id: string, o: { note?: string; severity?: Severity; summary?: string; secret?: string[]; reopen?: boolean; status?: IncidentStatus; json?: boolean }, cmd: Command) => {
      const inc = book(cmd).update(id, {
        ...(o.note !== undefined ? { note: o.note } : {}),
        ...(o.severity ? { severity: o.severity } : {}),
        ...(o.summary !== undefined ? { summary: o.summary } : {}),
        ...(o.secret ? { addSecrets: o.secret } : {}),
        ...(o.reopen ? { status: "open" as const } : {}),
        ...(o.status ? { status: o.status } : {}),
        by: who(),
      });
      if (o.json) printJson(inc);
      else process.stderr.write(`updated ${inc.id}\n`);
    });

  leak
    .command("resolve")
    .description("close an incident (say what was done in --note)")
    .argument("<id>", "incident id")
    .option("--note <text>", "what was done (default: resolved)")
    .option("--json", "print the record")
    .action((id: string, o: { note?: string; json?: boolean }, cmd: Command) => {
      const b = book(cmd);
      if (b.get(id).status === "resolved") throw new DsopsError(`${b.get(id).id} is already resolved`, { hint: "dsops leak update ID --reopen reopens it" });
      const inc = b.update(id, { note: o.note ?? "resolved", status: "resolved", by: who() });
      if (o.json) printJson(inc);
      else process.stderr.write(`resolved ${inc.id}\n`);
    });
}
