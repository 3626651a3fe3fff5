import { userInfo } from "node:os";
import { Option, type Command } from "commander";
import { IncidentBook, severities, type Incident, type Severity } from "../../guard/incidents";
import { DsopsError } from "../../core/errors";
import { commandGroup, configDir, printJson, table } from "../util";

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
    .requiredOption("--summary <text>", "what happened (never the value)")
    .addOption(severityOption("how bad", "high"))
    .option("--secret <names...>", "names of the affected secrets (variables or store keys)")
    .option("--note <text>", "first note (default: reported)")
    .option("--json", "print the record")
    .action((o: { summary: string; severity: Severity; secret?: string[]; note?: string; json?: boolean }, cmd: Command) => {
      const inc = book(cmd).create({ summary: o.summary, severity: o.severity, secrets: o.secret ?? [], ...(o.note !== undefined ? { note: o.note } : {}), by: who() });
      if (o.json) printJson(inc);
      else process.stdout.write(inc.id + "\n");
      process.stderr.write(`opened ${inc.id}; rotate the affected secrets, then: dsops leak resolve ${inc.id} --note "rotated …"\n`);
    });

  leak
    .command("list")
    .description("list incident records")
    .addOption(new Option("--status <status>", "which ones").choices(["open", "resolved", "all"]).default("all"))
    .option("--json", "machine-readable output")
    .action((o: { status: string; json?: boolean }, cmd: Command) => {
      const all = book(cmd).list().filter((i) => o.status === "all" || i.status === o.status);
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
    .option("--json", "print the record")
    .action((id: string, o: { note?: string; severity?: Severity; summary?: string; secret?: string[]; reopen?: boolean; json?: boolean }, cmd: Command) => {
      const inc = book(cmd).update(id, {
        ...(o.note !== undefined ? { note: o.note } : {}),
        ...(o.severity ? { severity: o.severity } : {}),
        ...(o.summary !== undefined ? { summary: o.summary } : {}),
        ...(o.secret ? { addSecrets: o.secret } : {}),
        ...(o.reopen ? { status: "open" as const } : {}),
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
