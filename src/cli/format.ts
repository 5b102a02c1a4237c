/** Human-readable figures for terminal output. */
import type { Dim } from '../ir/types.js';

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

export function formatCount(n: number): string {
  if (n < 1e3) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} K`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} M`;
  return `${(n / 1e9).toFixed(2)} G`;
}

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
