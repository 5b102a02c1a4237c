/** Human-readable figures for terminal output. */
import type { Dim } from '../ir/types.js';

export { formatBytes, formatCount } from '../util/format.js';

export function formatDims(shape: Dim[] | null): string {
  return shape === null ? '[*]' : `[${shape.map((d) => (d === null ? '?' : String(d))).join(',')}]`;
}

export function formatNumber(x: number | undefined): string {
  if (x === undefined) return '-';
  if (x === 0 || (Math.abs(x) >= 1e-3 && Math.abs(x) < 1e6)) return Number(x.toPrecision(5)).toString();
  return x.toExponential(3);
}

/** Left-aligned columns. */
export function table(rows: string[][], indent = '  '): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}
