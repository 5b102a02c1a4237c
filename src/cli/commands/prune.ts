/** `mobilize prune`: parses the flags, runs the prune recipe (src/pipeline/prune.ts) and prints its report. */
import type { Command } from 'commander';
import { badInput } from '../../errors.js';
import { type PruneMethod, type PruneRecipeReport, runPrune } from '../../pipeline/prune.js';
import type { Criterion } from '../../prune/importance.js';
import type { Scope } from '../../prune/plan.js';
import type { StepProgress } from '../../train/trainer.js';
import { addDataOptions, type DataFlags, preprocessFrom } from '../data-options.js';
import { formatBytes, formatCount, table } from '../format.js';
import { parseInputShapes, parseInteger } from '../options.js';
import { print, printJson } from '../output.js';
import { type Progress, progressBar } from '../progress.js';

interface PruneFlags extends DataFlags {
  output: string;
  method: string;
  sparsity?: string;
  flops?: string;
  pattern?: string;
  scope?: string;
  criterion: string;
  multiple: string;
  finetuneEpochs: string;
  steps: string;
  data?: string;
  testData?: string;
  distill?: boolean;
  temperature: string;
  alpha: string;
  lr?: string;
  batch: string;
  seed: string;
  limit?: string;
  testLimit?: string;
  threads?: string;
  inputShape?: string[];
  latencyRuns: string;
  latencyBatch: string;
  json?: boolean;
}

function fraction(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const x = Number(text);
  if (text.trim() === '' || !Number.isFinite(x) || x <= 0 || x >= 1)
    throw badInput(`${flag} ${text}: expected a fraction strictly between 0 and 1`);
  return x;
}

function positive(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const x = Number(text);
  if (text.trim() === '' || !Number.isFinite(x) || x <= 0) throw badInput(`${flag} ${text}: expected a number above 0`);
  return x;
}

const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(x * 100).toFixed(2)}%`);
const ratio = (a: number | undefined, b: number | undefined): string =>
  a === undefined || b === undefined || b === 0 ? '' : `${(a / b).toFixed(2)}×`;

/** One bar per phase (evaluation, latency) and per fine-tuning round. */
function progressHooks(json: boolean | undefined) {
  if (json) return {};
  let bar: Progress | undefined;
  let current = '';
  const start = (label: string, total: number, unit: string, detail?: string) => {
    bar?.stop();
    current = label;
    bar = progressBar(label, total, unit, detail);
  };
  return {
    onPhase(phase: string) {
      bar?.stop();
      bar = undefined;
      current = '';
      if (process.stderr.isTTY && !process.env.MOBILIZE_NO_PROGRESS) process.stderr.write(`${phase}…\n`);
    },
    onProgress(phase: string, done: number, total: number) {
      if (current !== phase) start(phase, total, phase === 'latency' ? 'runs' : 'samples');
      bar?.update(done);
    },
    onStep(p: StepProgress, round: number) {
      const label = `fine-tune r${round} epoch ${p.epoch}/${p.epochs}`;
      if (current !== label) start(label, p.steps, 'steps', 'loss {loss} acc {acc}');
      bar?.update(p.step, { loss: p.loss.toFixed(4), acc: pct(p.accuracy) });
    },
  };
}

function summary(r: PruneRecipeReport): void {
  const b = r.before;
  const a = r.after;
  const rows = [
    ['', 'before', 'after', 'after/before'],
    ['parameters', formatCount(b.params), formatCount(a.params), ratio(a.params, b.params)],
    ['non-zero', formatCount(b.nonZero), formatCount(a.nonZero), ratio(a.nonZero, b.nonZero)],
    ['MACs', formatCount(b.macs), formatCount(a.macs), ratio(a.macs, b.macs)],
    ['file', formatBytes(b.bytes), formatBytes(a.bytes), ratio(a.bytes, b.bytes)],
    ['gzip', formatBytes(b.gzipBytes), formatBytes(a.gzipBytes), ratio(a.gzipBytes, b.gzipBytes)],
  ];
  if (b.latencyMs !== undefined && a.latencyMs !== undefined) {
    rows.push([
      `latency (batch ${r.latencyBatch})`,
      `${b.latencyMs.toFixed(3)} ms`,
      `${a.latencyMs.toFixed(3)} ms`,
      ratio(a.latencyMs, b.latencyMs),
    ]);
  }
  if (b.accuracy !== undefined) rows.push(['top-1', pct(b.accuracy), pct(a.accuracy), '']);
  print(table(rows));
  if (r.accuracyPruned !== undefined && r.rounds.some((x) => x.accuracyFinetuned !== undefined)) {
    print(
      `top-1 right after pruning${r.rounds.length > 1 ? ' (round 1)' : ''}: ${pct(r.accuracyPruned)}; after fine-tuning${r.distill ? ' with distillation' : ''}: ${pct(a.accuracy)}`,
    );
  }
  if (r.filter) {
    print('kept channels:');
    print(table(r.filter.layers.map((l) => [l.name, l.op, `${l.kept}/${l.channels}`])));
    const refused = r.filter.groups.filter((g) => g.protectedClasses > 0);
    if (refused.length > 0) {
      print('protected:');
      for (const g of refused) {
        print(
          `  ${g.layers.slice(0, 3).join(', ')}${g.layers.length > 3 ? ` (+${g.layers.length - 3})` : ''}: ${g.protectedClasses}/${g.classes} channels kept, ${g.reason}`,
        );
      }
    }
  }
  if (r.layers) {
    print('sparsity:');
    print(table(r.layers.map((l) => [l.name, l.op, `${l.zeros}/${l.weights}`, pct(l.sparsity)])));
    print('dense runtimes do not skip zeros: latency does not improve; the zeros pay off in compressed size (gzip) or on sparse kernels');
  }
  print(`wrote ${r.output.path} (${formatBytes(r.output.bytes)})`);
}

export function registerPrune(program: Command): void {
  const cmd = program
    .command('prune')
    .description(
      'prune a model: remove whole channels (l1-filter: smaller and faster on every runtime) or zero weights (magnitude, N:M), then fine-tune',
    )
    .argument('<model>', 'the model to prune (.onnx)')
    .requiredOption('-o, --output <file>', 'the pruned model (.onnx)')
    .requiredOption('--method <method>', 'l1-filter (remove channels), magnitude (zero the smallest |w|) or nm (N:M pattern)')
    .option('--sparsity <x>', 'magnitude: fraction of weights zeroed; l1-filter: fraction of channels removed (0–1)')
    .option('--flops <x>', 'l1-filter: fraction of the multiply-accumulates to remove, at least (0.5 leaves at most half; 0–1)')
    .option('--pattern <N:M>', 'nm: keep N of every M weights along the input channels', '2:4')
    .option('--scope <scope>', 'layer (same fraction in every layer) or global (one ranking); default global for --flops, layer otherwise')
    .option('--criterion <c>', 'l1-filter channel score: l1 (Σ|w|), l2 or bn-scale (|γ| of the next BatchNormalization)', 'l1')
    .option(
      '--multiple <m>',
      "l1-filter: keep channel counts at multiples of m (onnxruntime's CPU kernels run odd counts slowly; 1 keeps them free)",
      '8',
    )
    .option('--finetune-epochs <n>', 'fine-tune on --data for n epochs in all (0: no fine-tuning)', '0')
    .option('--steps <k>', 'prune and fine-tune in k rounds, the target rising on a cubic schedule', '1')
    .option('--data <spec>', 'data for fine-tuning and accuracy: fashion-mnist, an .npz with inputs and labels, or an image folder')
    .option('--test-data <spec>', 'data to measure accuracy on (default: fashion-mnist:test with fashion-mnist, else --data)')
    .option('--distill', 'fine-tune against the unpruned model as teacher (knowledge distillation)')
    .option('--temperature <T>', 'distillation temperature', '4')
    .option('--alpha <a>', 'weight of the distillation term', '0.7')
    .option('--lr <x>', 'fine-tuning learning rate (default 0.001, AdamW)')
    .option('--batch <n>', 'fine-tuning batch size', '128')
    .option('--seed <n>', 'seeds shuffling and the latency inputs', '0')
    .option('--limit <n>', 'fine-tune on the first n samples only')
    .option('--test-limit <n>', 'measure accuracy on the first n samples only')
    .option('--threads <n>', 'intra-op threads for onnxruntime')
    .option('--input-shape <name:dims...>', 'shapes to count MACs with (free dims count as 1 for the batch and 224 otherwise)')
    .option('--latency-runs <n>', 'timed runs per model for the latency comparison (0: skip)', '50')
    .option('--latency-batch <n>', 'batch size of the latency runs', '1')
    .option('--json', 'print one JSON object');
  addDataOptions(cmd).action(async (input: string, opts: PruneFlags) => {
    const method = opts.method as PruneMethod;
    if (!['magnitude', 'l1-filter', 'nm'].includes(method)) throw badInput(`--method ${opts.method}: expected l1-filter, magnitude or nm`);
    if (opts.scope !== undefined && opts.scope !== 'layer' && opts.scope !== 'global')
      throw badInput(`--scope ${opts.scope}: expected layer or global`);
    if (!['l1', 'l2', 'bn-scale'].includes(opts.criterion)) throw badInput(`--criterion ${opts.criterion}: expected l1, l2 or bn-scale`);
    const report = await runPrune({
      input,
      output: opts.output,
      method,
      sparsity: fraction('--sparsity', opts.sparsity),
      flops: fraction('--flops', opts.flops),
      pattern: method === 'nm' ? opts.pattern : undefined,
      scope: opts.scope as Scope | undefined,
      criterion: opts.criterion as Criterion,
      multiple: parseInteger('--multiple', opts.multiple, 1),
      finetuneEpochs: parseInteger('--finetune-epochs', opts.finetuneEpochs, 0),
      steps: parseInteger('--steps', opts.steps, 1),
      data: opts.data,
      testData: opts.testData,
      preprocess: preprocessFrom(opts),
      distill: opts.distill ?? false,
      temperature: positive('--temperature', opts.temperature),
      alpha: fraction('--alpha', opts.alpha),
      lr: positive('--lr', opts.lr),
      batchSize: parseInteger('--batch', opts.batch, 1),
      seed: parseInteger('--seed', opts.seed, 0),
      limit: opts.limit === undefined ? undefined : parseInteger('--limit', opts.limit, 1),
      testLimit: opts.testLimit === undefined ? undefined : parseInteger('--test-limit', opts.testLimit, 1),
      threads: opts.threads === undefined ? undefined : parseInteger('--threads', opts.threads, 1),
      inputShapes: parseInputShapes(opts.inputShape),
      latencyRuns: parseInteger('--latency-runs', opts.latencyRuns, 0),
      latencyBatch: parseInteger('--latency-batch', opts.latencyBatch, 1),
      ...progressHooks(opts.json),
    });
    if (opts.json) printJson(report);
    else summary(report);
  });
}
