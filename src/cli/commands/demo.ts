import type { Command } from 'commander';
import { checkFailed } from '../../errors.js';
import { runDemo } from '../../pipeline/demo.js';
import { formatBytes, formatCount } from '../format.js';
import { parseInteger } from '../options.js';
import { print, printJson } from '../output.js';

/** Outputs of the two runtimes must agree this closely for the demo to pass. */
const AGREEMENT_TOLERANCE = 1e-3;

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'the main job on a built-in default: build a Fashion-MNIST CNN, save, load, inspect, optimize it (checked on onnxruntime), and run it on onnxruntime and the reference interpreter',
    )
    .option('-o, --output <folder>', 'where to write the demo model', 'mobilize-demo')
    .option('--seed <n>', 'seed for the weights', '0')
    .option('--json', 'print one JSON object')
    .action(async (opts: { output: string; seed: string; json?: boolean }) => {
      const report = await runDemo({
        outDir: opts.output,
        seed: parseInteger('--seed', opts.seed),
        onStep: opts.json ? undefined : (s) => print(`  ${s.step.padEnd(16)} ${s.ms.toFixed(0).padStart(5)} ms  ${s.detail}`),
      });
      const ok = report.maxAbsDiff <= AGREEMENT_TOLERANCE && report.top1Agreement === 1;
      if (opts.json) printJson({ ok, ...report });
      else {
        const r = report.inspect;
        print(
          `model ${report.model}: ${r.nodes} nodes, ${formatCount(r.params)} params, ${formatBytes(report.fileBytes)}, ${formatCount(r.macs ?? 0)} MACs per image`,
        );
        const o = report.optimized;
        const rewrites = Object.entries(o.rewrites)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ');
        print(`optimized ${o.model}: ${o.nodesBefore} → ${o.nodesAfter} nodes (${rewrites}), ${formatBytes(o.fileBytes)}`);
        print(
          `onnxruntime vs reference interpreter on ${report.samples} ${report.data}: max |diff| ${report.maxAbsDiff.toExponential(2)}, top-1 agreement ${(report.top1Agreement * 100).toFixed(0)}%`,
        );
        print(ok ? 'demo passed' : 'demo FAILED: the runtimes disagree');
      }
      if (!ok)
        throw checkFailed(
          `onnxruntime and the reference interpreter disagree (max |diff| ${report.maxAbsDiff}, top-1 agreement ${report.top1Agreement})`,
        );
    });
}
