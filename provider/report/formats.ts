import type { ComplianceReport, CredentialReport } from "./types";

/** The formats a report is written in: all rendered from the one JSON report. */
export const reportFormats = ["html", "json", "csv", "md"] as const;
export type ReportFormat = (typeof reportFormats)[number];

export function renderReport(report: ComplianceReport, format: ReportFormat): string {
  switch (format) {
    case "json":
      return JSON.stringify(report, null, 2) + "\n";
    case "csv":
      return renderCsv(report);
    case "md":
      return renderMarkdown(report);
    case "html":
      return (require("./html") as typeof import("./html")).renderHtml(report);
  }
}

/** A CSV field: quoted when needed; a leading =, +, - or @ is prefixed with ' (no formula runs when a spreadsheet opens it). */
function csvField(v: unknown): string {
  let s = v === undefined || v === null ? "" : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const CSV_HEAD = ["env", "variable", "owner", "kind", "store", "service", "target_type", "strategy", "max_age", "age", "issued_at", "due_at", "overdue", "last_rotation", "last_rotation_at", "result", "control", "verdict", "reason", "waiver_approver", "waiver_expires", "waiver_reason", "expired_waiver"];

/** One row per credential and control. */
function renderCsv(report: ComplianceReport): string {
  const rows = [CSV_HEAD];
  for (const c of report.credentials)
    for (const r of c.controls)
      rows.push([
        c.env,
        c.variable,
        c.owner ?? "",
        c.kind,
        c.store,
        c.service,
        c.targetType,
        c.policy.strategy,
        c.policy.maxAge ?? "",
        c.age ?? "",
        c.issuedAt ?? "",
        c.dueAt ?? "",
        String(c.overdue),
        c.lastRotation?.id ?? "",
        c.lastRotation ? (c.lastRotation.finishedAt ?? c.lastRotation.startedAt) : "",
        c.result,
        r.control,
        r.waiver ? "fail (waived)" : r.verdict,
        r.reason,
        r.waiver?.approver ?? "",
        r.waiver?.expires ?? "",
        r.waiver?.reason ?? "",
        r.expiredWaiver ? `${r.expiredWaiver.approver} (expired ${r.expiredWaiver.expires})` : "",
      ]);
  return rows.map((r) => r.map(csvField).join(",")).join("\r\n") + "\r\n";
}

/** A Markdown table cell. */
const md = (v: unknown) => (v === undefined || v === null || v === "" ? "-" : String(v).replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " "));

export function verdictText(r: CredentialReport["controls"][number]): string {
  return r.waiver ? "fail (waived)" : r.verdict;
}

function renderMarkdown(report: ComplianceReport): string {
  const s = report.summary;
  const out: string[] = [];
  out.push(`# Compliance report (${report.framework === "all" ? "PCI-DSS v4.0 and SOC 2" : report.framework === "pci-dss" ? "PCI-DSS v4.0" : "SOC 2"})`, "");
  out.push(`Generated ${report.generatedAt}${report.env ? ` for env ${md(report.env)}` : ""}${report.source ? ` from ${md(report.source)}` : ""}.`, "");
  out.push("## Summary", "");
  out.push("| Credentials | Compliant | Failing | Overdue | Controls passed | Controls failed | Waived | Not applicable | Rotations | Failed | Rolled back | Active waivers | Expired waivers | Break-glass |");
  out.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
  out.push(`| ${s.credentials} | ${s.compliant} | ${s.failing} | ${s.overdue} | ${s.controls.pass} | ${s.controls.fail} | ${s.controls.waived} | ${s.controls.notApplicable} | ${s.rotations.total} | ${s.rotations.failed} | ${s.rotations.rolledBack} | ${s.waivers.active} | ${s.waivers.expired} | ${s.breakGlass} |`, "");
  out.push("## Credentials", "");
  out.push("| Env | Variable | Owner | Kind | Store | Strategy | Max age | Age | Last rotation | Result | Compliant |");
  out.push("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const c of report.credentials)
    out.push(
      `| ${md(c.env)} | ${md(c.variable)} | ${md(c.owner)} | ${c.kind} | ${md(c.store)} | ${md(c.policy.strategy)} | ${md(c.policy.maxAge)} | ${md(c.age)}${c.overdue ? " (overdue)" : ""} | ${md(c.lastRotation ? `${c.lastRotation.id} ${c.lastRotation.finishedAt ?? c.lastRotation.startedAt}` : undefined)} | ${c.result} | ${c.compliant ? "yes" : "no"} |`,
    );
  out.push("", "## Verdicts", "");
  out.push("| Env | Variable | Control | Verdict | Reason |");
  out.push("|---|---|---|---|---|");
  for (const c of report.credentials)
    for (const r of c.controls)
      out.push(`| ${md(c.env)} | ${md(c.variable)} | ${r.control} | ${verdictText(r)} | ${md(r.reason)}${r.waiver ? md(` — waived by ${r.waiver.approver} until ${r.waiver.expires}: ${r.waiver.reason}`) : ""}${r.expiredWaiver ? md(` — waiver by ${r.expiredWaiver.approver} expired ${r.expiredWaiver.expires}`) : ""} |`);
  out.push("", "## Waivers", "");
  if (!report.waivers.length) out.push("None.");
  else {
    out.push("| Credential | Control | Status | Approver | Expires | Reason | Ticket | Covers |");
    out.push("|---|---|---|---|---|---|---|---|");
    for (const w of report.waivers) out.push(`| ${md(w.credential)} | ${md(w.control)} | ${w.status} | ${md(w.approver)} | ${md(w.expires)} | ${md(w.reason)} | ${md(w.ticket)} | ${md(w.covers.join(", "))} |`);
  }
  out.push("", "## Approvals and break-glass", "");
  if (!report.governance.length) out.push("None recorded.");
  else {
    out.push("| At | Kind | Credential | Who | Reason | Until |");
    out.push("|---|---|---|---|---|---|");
    for (const g of report.governance) out.push(`| ${md(g.at)} | ${md(g.kind)} | ${md(g.env && g.variable ? `${g.env}/${g.variable}` : g.secret)} | ${md(g.who)} | ${md(g.reason)} | ${md(g.until)} |`);
  }
  out.push("", "## Rotations", "");
  out.push("| Started | Finished | Env | Variable | Kind | Status | Strategy | Who | Error |");
  out.push("|---|---|---|---|---|---|---|---|---|");
  for (const r of report.rotations) out.push(`| ${r.startedAt} | ${md(r.finishedAt)} | ${md(r.env)} | ${md(r.variable)} | ${r.kind} | ${r.status} | ${md(r.strategy)} | ${md(r.who)} | ${md(r.error)} |`);
  out.push("", "## Controls", "");
  for (const c of report.controls) out.push(`- **${c.id}** ${md(c.title)}: ${md(c.checks)}`);
  return out.join("\n") + "\n";
}
