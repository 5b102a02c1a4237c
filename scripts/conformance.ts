/**
 * Runs the conformance tiers over Debian's libonnx-testdata and prints the counts:
 *   npx tsx scripts/conformance.ts [roundtrip|shapes|kernels|all] [--filter text] [--verbose] [--markdown FILE]
 * `--markdown` rewrites the results section of docs/conformance.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { listCases, type Outcome, runCase, SUITES, testDataAvailable } from '../test/conformance/harness.js';
import { checkKernels, checkShapes } from '../test/conformance/ops-harness.js';

const args = process.argv.slice(2);
const tier =
  args.find((a) => !a.startsWith('--') && args[args.indexOf(a) - 1] !== '--filter' && args[args.indexOf(a) - 1] !== '--markdown') ?? 'all';
const filter = args.includes('--filter') ? args[args.indexOf('--filter') + 1] : undefined;
const verbose = args.includes('--verbose');
const markdown = args.includes('--markdown') ? args[args.indexOf('--markdown') + 1] : undefined;

if (!testDataAvailable()) {
  console.error('libonnx-testdata is not installed (apt-get install libonnx-testdata)');
  process.exit(2);
}

interface Tally {
  pass: number;
  fail: number;
  skip: number;
  rows: Array<[string, Outcome]>;
}

async function tally(
  suites: readonly string[],
  check: (suite: string, name: string) => Promise<Outcome> | Outcome,
): Promise<Record<string, Tally>> {
  const out: Record<string, Tally> = {};
  for (const suite of suites) {
    const t: Tally = { pass: 0, fail: 0, skip: 0, rows: [] };
    for (const name of listCases(suite)) {
      if (filter && !name.includes(filter)) continue;
      let r: Outcome;
      try {
        r = await check(suite, name);
      } catch (e) {
        r = { status: 'fail', reason: `crashed: ${(e as Error).message}` };
      }
      t[r.status]++;
      t.rows.push([name, r]);
      if (r.status === 'fail' || verbose)
        console.log(`${r.status.padEnd(4)} ${suite}/${name}${r.status === 'pass' ? '' : `: ${r.reason}`}`);
    }
    out[suite] = t;
    console.log(`${suite}: ${t.pass} passed, ${t.fail} failed, ${t.skip} skipped`);
  }
  return out;
}

const sections: string[] = [];
function section(title: string, results: Record<string, Tally>): void {
  const node = results.node;
  const summary = node
    ? `Node tests: **${node.pass} of ${node.rows.length} pass (${((100 * node.pass) / node.rows.length).toFixed(1)}%)**, ${node.fail} fail, ${node.skip} skipped with a reason.`
    : '';
  const lines = [`### ${title}`, '', summary, '', '| suite | tests | passed | failed | skipped |', '| --- | --- | --- | --- | --- |'];
  for (const [suite, t] of Object.entries(results)) lines.push(`| ${suite} | ${t.rows.length} | ${t.pass} | ${t.fail} | ${t.skip} |`);
  const skips = Object.entries(results).flatMap(([suite, t]) =>
    t.rows
      .filter(([, r]) => r.status !== 'pass')
      .map(([name, r]) => `| ${suite}/${name} | ${r.status} | ${(r as { reason: string }).reason.replace(/\|/g, '\\|').slice(0, 240)} |`),
  );
  if (skips.length > 0)
    lines.push(
      '',
      '<details><summary>Every test not passed, with its reason</summary>',
      '',
      '| test | result | reason |',
      '| --- | --- | --- |',
      ...skips,
      '',
      '</details>',
    );
  sections.push(lines.join('\n'));
}

if (tier === 'roundtrip' || tier === 'all')
  section('Round trip on onnxruntime (read → IR → write → run → compare)', await tally(SUITES, runCase));
if (tier === 'shapes' || tier === 'all')
  section('Shape and type inference (declared types erased, inferred, compared with the outputs)', await tally(['node'], checkShapes));
if (tier === 'kernels' || tier === 'all')
  section('Reference kernels (run on the reference interpreter where every op has a kernel)', await tally(['node'], checkKernels));

if (markdown) {
  const doc = readFileSync(markdown, 'utf8');
  const marker = '<!-- results -->';
  const head = doc.includes(marker) ? doc.slice(0, doc.indexOf(marker) + marker.length) : `${doc.trimEnd()}\n\n${marker}`;
  writeFileSync(markdown, `${head}\n\n${sections.join('\n\n')}\n`);
  console.log(`wrote ${markdown}`);
}
