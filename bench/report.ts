/** Writes a benchmark's results into its marked section of docs/benchmarks.md. */
import { readFileSync, writeFileSync } from 'node:fs';

export function updateSection(file: string, name: string, body: string): void {
  const begin = `<!-- bench:${name}:begin -->`;
  const end = `<!-- bench:${name}:end -->`;
  const doc = readFileSync(file, 'utf8');
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i < 0 || j < 0) throw new Error(`${file} has no ${begin} … ${end} section`);
  writeFileSync(file, `${doc.slice(0, i + begin.length)}\n${body}\n${doc.slice(j)}`);
}
