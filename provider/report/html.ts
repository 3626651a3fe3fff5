import type { ComplianceReport, CredentialReport } from "./types";

/**
 * The HTML report: one self-contained file (inline CSS, SVG and a little JavaScript; no request
 * leaves it, so it opens offline). Summary tiles, a chart of each credential's age against its
 * change period, rotations over time by outcome, and the credential table with filters.
 * Everything is rendered here; the script only shows and hides table rows.
 */

const esc = (v: unknown) =>
  String(v ?? "").replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] as string);

const COLORS = { succeeded: "#2e9d5b", grace: "#3aa7a3", "rolled-back": "#e59a2f", failed: "#d64545", running: "#8a8f98" } as const;
const DAY = 86_400_000;

function tile(label: string, value: number | string, tone: "ok" | "bad" | "warn" | "plain", id: string): string {
  return `<div class="tile ${tone}" data-tile="${esc(id)}"><div class="v">${esc(value)}</div><div class="l">${esc(label)}</div></div>`;
}

/** Bars of each credential's age, with its change period as a tick; red past it. */
function ageChart(creds: readonly CredentialReport[]): string {
  if (!creds.length) return `<p class="muted">No rotated credential.</p>`;
  const maxMs = Math.max(DAY, ...creds.flatMap((c) => [c.ageMs ?? 0, c.policy.maxAgeMs ?? 0]));
  const rowH = 22;
  const labelW = 230;
  const w = 760;
  const plotW = w - labelW - 80;
  const h = creds.length * rowH + 30;
  const x = (ms: number) => labelW + (ms / maxMs) * plotW;
  const rows = creds.map((c, i) => {
    const y = 10 + i * rowH;
    const age = c.ageMs;
    const limit = c.policy.maxAgeMs;
    const tone = age === undefined ? "#b7bcc4" : c.overdue || (limit !== undefined && age > limit) ? "#d64545" : limit === undefined ? "#e59a2f" : "#2e9d5b";
    const title = `${c.env}/${c.variable}: age ${c.age ?? "unknown"}, change period ${c.policy.maxAge ?? "none"}`;
    return (
      `<g class="age-row"><title>${esc(title)}</title>` +
      `<text x="${labelW - 8}" y="${y + 14}" text-anchor="end">${esc(`${c.env}/${c.variable}`)}</text>` +
      `<rect x="${labelW}" y="${y + 3}" width="${Math.max(2, x(age ?? 0) - labelW).toFixed(1)}" height="${rowH - 8}" rx="3" fill="${tone}"/>` +
      (limit !== undefined ? `<line x1="${x(limit).toFixed(1)}" x2="${x(limit).toFixed(1)}" y1="${y}" y2="${y + rowH - 2}" stroke="#1f2937" stroke-width="2"/>` : "") +
      `<text x="${(x(Math.max(age ?? 0, limit ?? 0)) + 6).toFixed(1)}" y="${y + 14}" class="small">${esc(c.age ?? "age unknown")}${limit !== undefined ? ` / ${esc(c.policy.maxAge)}` : " / no limit"}</text></g>`
    );
  });
  const days = Math.round(maxMs / DAY);
  return `<svg id="age-chart" role="img" aria-label="credential ages against their limits" viewBox="0 0 ${w} ${h}" width="100%">${rows.join("")}<text x="${labelW}" y="${h - 4}" class="small">0</text><text x="${labelW + plotW}" y="${h - 4}" class="small" text-anchor="end">${days}d</text></svg>`;
}

/** Stacked bars of rotations per day (or per week over long spans), by outcome. */
function timeline(report: ComplianceReport): string {
  const rs = report.rotations;
  if (!rs.length) return `<p class="muted">No rotation recorded.</p>`;
  const t0 = Date.parse(rs[0].startedAt);
  const t1 = Date.parse(rs[rs.length - 1].startedAt);
  const weekly = (t1 - t0) / DAY > 45;
  const bucketOf = (t: number) => {
    const d = new Date(Math.floor(t / DAY) * DAY);
    if (weekly) d.setUTCDate(d.getUTCDate() - ((d.getUTCDay() + 6) % 7));
    return d.toISOString().slice(0, 10);
  };
  const buckets = new Map<string, Record<string, number>>();
  for (const r of rs) {
    const b = bucketOf(Date.parse(r.startedAt));
    const m = buckets.get(b) ?? {};
    m[r.status] = (m[r.status] ?? 0) + 1;
    buckets.set(b, m);
  }
  const keys = [...buckets.keys()].sort();
  const most = Math.max(...keys.map((k) => Object.values(buckets.get(k) as Record<string, number>).reduce((a, b) => a + b, 0)));
  const w = 760;
  const h = 200;
  const left = 30;
  const bw = Math.min(48, (w - left - 10) / keys.length - 4);
  const scale = (h - 50) / most;
  const bars = keys.map((k, i) => {
    const m = buckets.get(k) as Record<string, number>;
    let y = h - 30;
    const x = left + i * (bw + 4);
    const parts = (Object.keys(COLORS) as Array<keyof typeof COLORS>)
      .filter((s) => m[s])
      .map((s) => {
        const hh = m[s] * scale;
        y -= hh;
        return `<rect class="bar" data-status="${s}" data-count="${m[s]}" x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${bw.toFixed(1)}" height="${hh.toFixed(1)}" fill="${COLORS[s]}"><title>${esc(`${weekly ? "week of " : ""}${k}: ${m[s]} ${s}`)}</title></rect>`;
      });
    return parts.join("") + `<text x="${(x + bw / 2).toFixed(1)}" y="${h - 14}" class="small" text-anchor="middle">${esc(k.slice(5))}</text>`;
  });
  const legend = (Object.keys(COLORS) as Array<keyof typeof COLORS>).map((s, i) => `<rect x="${left + i * 110}" y="4" width="10" height="10" fill="${COLORS[s]}"/><text x="${left + i * 110 + 14}" y="13" class="small">${s}</text>`);
  return `<svg id="timeline" role="img" aria-label="rotations over time by outcome (${weekly ? "per week" : "per day"})" viewBox="0 0 ${w} ${h}" width="100%">${legend.join("")}<text x="4" y="${h - 30}" class="small">0</text><text x="4" y="30" class="small">${most}</text>${bars.join("")}</svg>`;
}

function badge(r: CredentialReport["controls"][number]): string {
  const cls = r.waiver ? "waived" : r.verdict;
  const text = r.waiver ? "waived" : r.verdict === "not-applicable" ? "n/a" : r.verdict;
  const extra = r.waiver ? ` — waived by ${r.waiver.approver} until ${r.waiver.expires}: ${r.waiver.reason}` : r.expiredWaiver ? ` — waiver by ${r.expiredWaiver.approver} expired ${r.expiredWaiver.expires}` : "";
  return `<span class="badge ${cls}" title="${esc(r.reason + extra)}">${text}</span>`;
}

function credentialRows(report: ComplianceReport): string {
  return report.credentials
    .map((c) => {
      const failing = c.controls.filter((r) => r.verdict === "fail" && !r.waiver).map((r) => r.control);
      const findings = c.controls
        .filter((r) => r.verdict === "fail")
        .map((r) => `<li><b>${esc(r.control)}</b>: ${esc(r.reason)}${r.waiver ? ` <i>(waived by ${esc(r.waiver.approver)} until ${esc(r.waiver.expires)})</i>` : ""}${r.expiredWaiver ? ` <i>(waiver by ${esc(r.expiredWaiver.approver)} expired ${esc(r.expiredWaiver.expires)})</i>` : ""}</li>`)
        .join("");
      return (
        `<tr class="cred" data-env="${esc(c.env)}" data-status="${c.compliant ? "compliant" : "failing"}" data-overdue="${c.overdue}" data-failing="${esc(failing.join(" "))}" data-text="${esc(`${c.env} ${c.variable} ${c.owner ?? ""} ${c.service} ${c.store}`.toLowerCase())}">` +
        `<td>${esc(c.env)}</td><td><b>${esc(c.variable)}</b><div class="small muted">${esc(c.secret)}</div></td><td>${esc(c.owner ?? "—")}</td><td>${esc(c.kind)}</td>` +
        `<td>${esc(c.policy.strategy)}<div class="small muted">${esc(c.policy.maxAge ? `max ${c.policy.maxAge}` : "no period")}${c.policy.windows.length ? ` · ${c.policy.windows.length} window(s)` : ""}</div></td>` +
        `<td class="${c.overdue ? "bad-text" : ""}">${esc(c.age ?? "unknown")}${c.overdue ? " (overdue)" : ""}</td>` +
        `<td>${esc(c.lastRotation ? (c.lastRotation.finishedAt ?? c.lastRotation.startedAt).slice(0, 16).replace("T", " ") : "never")}</td><td><span class="st ${esc(c.result)}">${esc(c.result)}</span></td>` +
        c.controls.map((r) => `<td class="ctl" data-control="${esc(r.control)}">${badge(r)}</td>`).join("") +
        `</tr>` +
        // The findings in words, on a full-width row under the credential (shown and hidden with it).
        (findings ? `<tr class="findings-row"><td></td><td colspan="${7 + c.controls.length}"><ul class="findings">${findings}</ul></td></tr>` : "")
      );
    })
    .join("");
}

function waiverRows(report: ComplianceReport): string {
  if (!report.waivers.length) return `<p class="muted">No waiver.</p>`;
  return (
    `<table id="waivers"><thead><tr><th>Credential</th><th>Control</th><th>Status</th><th>Approver</th><th>Expires</th><th>Reason</th><th>Ticket</th><th>Covers</th></tr></thead><tbody>` +
    report.waivers
      .map((w) => `<tr class="waiver ${w.status}"><td>${esc(w.credential)}</td><td>${esc(w.control)}</td><td><span class="badge ${w.status === "active" ? "waived" : "fail"}">${w.status}</span></td><td>${esc(w.approver)}</td><td>${esc(w.expires)}</td><td>${esc(w.reason)}</td><td>${esc(w.ticket ?? "")}</td><td>${esc(w.covers.join(", ") || "—")}</td></tr>`)
      .join("") +
    `</tbody></table>`
  );
}

function governanceRows(report: ComplianceReport): string {
  if (!report.governance.length) return `<p class="muted">No approval or break-glass recorded.</p>`;
  return (
    `<table id="governance"><thead><tr><th>At</th><th>Kind</th><th>Credential</th><th>Who</th><th>Reason</th><th>Until</th></tr></thead><tbody>` +
    report.governance.map((g) => `<tr class="gov" data-kind="${esc(g.kind)}"><td>${esc(g.at)}</td><td>${esc(g.kind)}</td><td>${esc(g.env && g.variable ? `${g.env}/${g.variable}` : (g.secret ?? ""))}</td><td>${esc(g.who ?? "")}</td><td>${esc(g.reason ?? "")}</td><td>${esc(g.until ?? "")}</td></tr>`).join("") +
    `</tbody></table>`
  );
}

const CSS = `
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2937;background:#f5f6f8}
header{background:#1f2937;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}header .meta{opacity:.75;font-size:12px;margin-top:4px}
main{padding:20px 28px;max-width:1500px}section{background:#fff;border-radius:8px;padding:16px 18px;margin:0 0 18px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
h2{font-size:15px;margin:0 0 10px}.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;margin-bottom:18px}
.tile{background:#fff;border-radius:8px;padding:12px 14px;border-left:5px solid #9aa1ab;box-shadow:0 1px 2px rgba(0,0,0,.06)}.tile .v{font-size:26px;font-weight:650}.tile .l{font-size:12px;color:#4b5563}
.tile.ok{border-color:#2e9d5b}.tile.bad{border-color:#d64545}.tile.warn{border-color:#e59a2f}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:18px}@media(max-width:1100px){.grid2{grid-template-columns:1fr}}
svg text{font-size:11px;fill:#374151}svg .small,.small{font-size:11px}.muted{color:#6b7280}.bad-text{color:#b42323;font-weight:600}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e7eb;vertical-align:top}th{font-size:12px;color:#4b5563;background:#f9fafb;position:sticky;top:0}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:11px;font-weight:600;cursor:help}.badge.pass{background:#dcf3e4;color:#1d6b3d}.badge.fail{background:#fbdcdc;color:#9b1c1c}
.badge.not-applicable{background:#eceef1;color:#6b7280}.badge.waived{background:#fdebd0;color:#8a4b06}.st{font-size:12px}.st.failed,.st.rolled-back{color:#b42323;font-weight:600}
.filters{display:flex;gap:10px;flex-wrap:wrap;align-items:center;margin-bottom:10px}.filters select,.filters input{padding:4px 6px;border:1px solid #cfd4da;border-radius:5px;font:inherit}
.findings{margin:0;padding-left:16px;font-size:12px;color:#7f1d1d}tr.cred:has(+ tr.findings-row) td{border-bottom:none}tr.findings-row td{padding-top:0}tr[hidden]{display:none}.controls-list dt{font-weight:600}.controls-list dd{margin:0 0 8px 0;color:#4b5563}
`;

/** Shows the rows the filters let through and says how many. */
const SCRIPT = `
"use strict";
(function () {
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.cred"));
  var env = document.getElementById("f-env"), status = document.getElementById("f-status"), control = document.getElementById("f-control"), text = document.getElementById("f-text");
  var shown = document.getElementById("shown");
  function apply() {
    var n = 0, q = text.value.trim().toLowerCase();
    rows.forEach(function (r) {
      var ok = (!env.value || r.dataset.env === env.value) &&
        (!status.value || (status.value === "overdue" ? r.dataset.overdue === "true" : r.dataset.status === status.value)) &&
        (!control.value || r.dataset.failing.split(" ").indexOf(control.value) >= 0) &&
        (!q || r.dataset.text.indexOf(q) >= 0);
      r.hidden = !ok;
      var next = r.nextElementSibling;
      if (next && next.classList.contains("findings-row")) next.hidden = !ok;
      if (ok) n++;
    });
    shown.textContent = n + " of " + rows.length + " credentials";
  }
  [env, status, control].forEach(function (e) { e.addEventListener("change", apply); });
  text.addEventListener("input", apply);
  document.querySelectorAll("[data-filter-status]").forEach(function (b) {
    b.addEventListener("click", function () { status.value = b.getAttribute("data-filter-status"); apply(); });
  });
  apply();
})();
`;

export function renderHtml(report: ComplianceReport): string {
  const s = report.summary;
  const envs = [...new Set(report.credentials.map((c) => c.env))].sort();
  const fw = report.framework === "all" ? "PCI-DSS v4.0 and SOC 2" : report.framework === "pci-dss" ? "PCI-DSS v4.0" : "SOC 2";
  const tiles = [
    tile("credentials", s.credentials, "plain", "credentials"),
    tile("compliant", s.compliant, s.compliant === s.credentials ? "ok" : "plain", "compliant"),
    tile("failing", s.failing, s.failing ? "bad" : "ok", "failing"),
    tile("overdue", s.overdue, s.overdue ? "bad" : "ok", "overdue"),
    tile("rotations", s.rotations.total, "plain", "rotations"),
    tile("failed rotations", s.rotations.failed, s.rotations.failed ? "bad" : "ok", "failed"),
    tile("rolled back", s.rotations.rolledBack, s.rotations.rolledBack ? "warn" : "ok", "rolled-back"),
    tile("unfinished rotations", s.rotations.running, s.rotations.running ? "warn" : "ok", "unfinished"),
    tile("control failures", s.controls.fail, s.controls.fail ? "bad" : "ok", "control-failures"),
    tile("waived", s.controls.waived, s.controls.waived ? "warn" : "plain", "waived"),
    tile("expired waivers", s.waivers.expired, s.waivers.expired ? "warn" : "plain", "expired-waivers"),
    tile("break-glass", s.breakGlass, s.breakGlass ? "warn" : "plain", "break-glass"),
  ].join("");
  const controlHead = report.controls.map((c) => `<th title="${esc(c.title)}">${esc(c.id.replace(/^pci-dss-/, "PCI ").replace(/^soc2-/, "SOC2 ").toUpperCase().replace("PCI ", "PCI "))}</th>`).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>dsops compliance report — ${esc(fw)}</title><style>${CSS}</style></head>
<body><header><h1>Compliance report — ${esc(fw)}</h1><div class="meta">Generated ${esc(report.generatedAt)}${report.env ? ` · env ${esc(report.env)}` : ""}${report.source ? ` · ${esc(report.source)}` : ""} · dsops</div></header>
<main>
<div class="tiles" id="tiles">${tiles}</div>
<div class="grid2">
<section><h2>Credential age against its change period</h2>${ageChart(report.credentials)}<p class="small muted">Bar: age of the current credential; tick: the policy's change period (ttl or schedule). Red: overdue; orange: no period.</p></section>
<section><h2>Rotations over time by outcome</h2>${timeline(report)}</section>
</div>
<section><h2>Credentials</h2>
<div class="filters">
<label>Env <select id="f-env"><option value="">all</option>${envs.map((e) => `<option>${esc(e)}</option>`).join("")}</select></label>
<label>Status <select id="f-status"><option value="">all</option><option value="failing">failing</option><option value="compliant">compliant</option><option value="overdue">overdue</option></select></label>
<label>Failing control <select id="f-control"><option value="">any</option>${report.controls.map((c) => `<option value="${esc(c.id)}">${esc(c.id)}</option>`).join("")}</select></label>
<label>Search <input id="f-text" type="search" placeholder="variable, owner, service"></label>
<button type="button" data-filter-status="failing">Show failing</button> <button type="button" data-filter-status="">Show all</button>
<span id="shown" class="muted"></span></div>
<div style="overflow:auto"><table id="credentials"><thead><tr><th>Env</th><th>Variable</th><th>Owner</th><th>Kind</th><th>Policy</th><th>Age</th><th>Last rotation</th><th>Result</th>${controlHead}</tr></thead>
<tbody>${credentialRows(report)}</tbody></table></div></section>
<section><h2>Waivers and exceptions</h2>${waiverRows(report)}</section>
<section><h2>Approvals and break-glass</h2>${governanceRows(report)}</section>
<section><h2>Controls checked</h2><dl class="controls-list">${report.controls.map((c) => `<dt>${esc(c.id)} — ${esc(c.title)}</dt><dd>${esc(c.checks)}</dd>`).join("")}</dl></section>
</main>
<script>${SCRIPT}</script>
</body></html>
`;
}
