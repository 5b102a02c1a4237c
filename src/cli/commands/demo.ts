import type { Command } from 'commander';
import { checkFailed } from '../../errors.js';
import { runDemo } from '../../pipeline/demo.js';
import { formatBytes, formatCount } from '../format.js';
import { parseInteger } from '../options.js';
import { print, printJson } from '../output.js';
import { type Progress, progressBar } from '../progress.js';

/** One bar per demo step, replaced when the step (its label) changes. */
function stepBars(): { onProgress: (step: string, done: number, total: number) => void; stop: () => void } {
  let bar: Progress | undefined;
  let current = '';
  return {
    onProgress(step, done, total) {
      if (step !== current || !bar) {
        bar?.stop();
        current = step;
        bar = progressBar(step.padEnd(18).slice(0, 18), total, 'items');
      }
      bar.update(done);
    },
    stop() {
      bar?.stop();
      bar = undefined;
      current = '';
    },
  };
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'the main job on a built-in default: train a Fashion-MNIST CNN, prune it (half the MACs, fine-tuned with distillation), quantize it to int8, export it to ONNX and TFLite (fp32 and int8), verify the exports on onnxruntime and the real TFLite interpreter, and write a report',
    )
    .option('-o, --output <folder>', 'where to write the models and the report', 'mobilize-demo')
    .option('--seed <n>', 'seed for weights, shuffles and sampling', '0')
    .option('--epochs <n>', 'training epochs', '3')
    .option('--finetune-epochs <n>', 'fine-tuning epochs after pruning', '1')
    .option('--limit <n>', 'train on the first n training images only (a quick run)')
    .option('--test-limit <n>', 'evaluate on the first n test images only')
    .option('--json', 'print one JSON object')
    .action(
      async (opts: {
        output: string;
        seed: string;
        epochs: string;
        finetuneEpochs: string;
        limit?: string;
        testLimit?: string;
        json?: boolean;
      }) => {
        const bars = stepBars();
        const report = await runDemo({
          outDir: opts.output,
          seed: parseInteger('--seed', opts.seed),
          epochs: parseInteger('--epochs', opts.epochs, 1),
          finetuneEpochs: parseInteger('--finetune-epochs', opts.finetuneEpochs, 0),
          limit: opts.limit === undefined ? undefined : parseInteger('--limit', opts.limit, 1),
          testLimit: opts.testLimit === undefined ? undefined : parseInteger('--test-limit', opts.testLimit, 1),
          onProgress: opts.json ? undefined : bars.onProgress,
          onStep: opts.json
            ? undefined
            : (s) => {
                bars.stop();
                print(`  ${s.step.padEnd(20)} ${(s.ms / 1000).toFixed(1).padStart(6)} s  ${s.detail}`);
              },
        });
        bars.stop();
        if (opts.json) printJson(report);
        else {
          print('');
          for (const r of report.stages) {
            const top1 = r.top1 === null || r.top1 === undefined ? '' : `top-1 ${(r.top1 * 100).toFixed(2)}%`;
            const lat = r.latencyMs === null || r.latencyMs === undefined ? '' : `, ${r.latencyMs.toFixed(3)} ms`;
            const macs = r.macs ? `, ${formatCount(r.macs)} MACs` : '';
            print(`${r.stage.padEnd(14)} ${(r.runtime ?? '').padEnd(20)} ${top1}, ${formatBytes(r.bytes ?? 0)}${macs}${lat}`);
          }
          print('');
          for (const c of report.checks) print(`${c.ok ? 'pass' : 'FAIL'}  ${c.name}: ${c.detail}`);
          print(`\nreport: ${report.files.html} (and ${report.files.report})`);
          print(report.ok ? 'demo passed' : 'demo FAILED: a check did not hold');
        }
        if (!report.ok) {
          const failed = report.checks.filter((c) => !c.ok).map((c) => `${c.name} (${c.detail})`);
          throw checkFailed(`demo check failed: ${failed.join('; ')}`);
        }
      },
    );
}
