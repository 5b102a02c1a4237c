/**
 * A pipeline report as one self-contained HTML page (no scripts, no external assets), so it can
 * be opened from disk, attached to a CI run or mailed. The same object is written as JSON beside
 * it; this file only renders.
 */
import { formatBytes, formatCount } from '../util/format.js';

/** One model the pipeline produced, measured on one runtime. */
export interface StageRow {
  stage: string;
  file?: string;
  runtime?: string;
  bytes?: number;
  params?: number | null;
  macs?: number | null;
  /** Top-1 accuracy as a fraction. */
  top1?: number | null;
  latencyMs?: number | null;
  note?: string;
}

export interface CheckRow {
  name: string;
  ok: boolean;
  detail: string;
}

export interface StepRow {
  step: string;
  ms: number;
  detail: string;
}

export interface PipelineReportData {
  title: string;
  createdAt: string;
  dataset?: string;
  stages: StageRow[];
  checks: CheckRow[];
  steps: StepRow[];
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

function bytes(n: number | undefined): string {
  return n === undefined ? '' : formatBytes(n);
}

function count(n: number | null | undefined): string {
  return n === null || n === undefined ? '' : formatCount(n);
}

function ratio(value: number | null | undefined, base: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || base === null || base === undefined || base === 0) return '';
  return ` <span class="r">(${(value / base).toFixed(digits)}x)</span>`;
}

function cell(s: string, numeric = false): string {
  return numeric ? `<td class="n">${s}</td>` : `<td>${s}</td>`;
}

export function renderHtml(r: PipelineReportData): string {
  const base = r.stages[0];
  const stageRows = r.stages
    .map((s) =>
      [
        '<tr>',
        cell(escapeHtml(s.stage)),
        cell(escapeHtml(s.runtime ?? '')),
        cell(s.top1 === null || s.top1 === undefined ? '' : `${(s.top1 * 100).toFixed(2)}%`, true),
        cell(bytes(s.bytes) + ratio(s.bytes, base?.bytes), true),
        cell(count(s.params), true),
        cell(count(s.macs) + ratio(s.macs, base?.macs), true),
        cell(
          s.latencyMs === null || s.latencyMs === undefined ? '' : `${s.latencyMs.toFixed(3)} ms${ratio(s.latencyMs, base?.latencyMs)}`,
          true,
        ),
        cell(escapeHtml(s.file ?? '')),
        cell(escapeHtml(s.note ?? '')),
        '</tr>',
      ].join(''),
    )
    .join('\n');
  const checkRows = r.checks
    .map(
      (c) =>
        `<tr><td class="${c.ok ? 'ok' : 'bad'}">${c.ok ? 'pass' : 'FAIL'}</td>${cell(escapeHtml(c.name))}${cell(escapeHtml(c.detail))}</tr>`,
    )
    .join('\n');
  const stepRows = r.steps
    .map((s) => `<tr>${cell(escapeHtml(s.step))}${cell(`${(s.ms / 1000).toFixed(2)} s`, true)}${cell(escapeHtml(s.detail))}</tr>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.title)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f3f3f3}.n{text-align:right;font-variant-numeric:tabular-nums}.r{color:#666}
.ok{color:#0a0;font-weight:bold}.bad{color:#c00;font-weight:bold}
</style></head><body>
<h1>${escapeHtml(r.title)}</h1>
<p>${escapeHtml(r.createdAt)}${r.dataset ? ` · accuracy on ${escapeHtml(r.dataset)}` : ''} · ratios are against the first row</p>
<h2>Models</h2>
<table><tr><th>stage</th><th>runtime</th><th>top-1</th><th>size</th><th>params</th><th>MACs</th><th>latency</th><th>file</th><th>note</th></tr>
${stageRows}
</table>
<h2>Checks</h2>
<table><tr><th></th><th>check</th><th>detail</th></tr>
${checkRows}
</table>
<h2>Steps</h2>
<table><tr><th>step</th><th>time</th><th>detail</th></tr>
${stepRows}
</table>
</body></html>
`;
}
