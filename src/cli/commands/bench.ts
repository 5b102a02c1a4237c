import type { Command } from 'commander';
import { badInput } from '../../errors.js';
import { measureLatency } from '../../eval/latency.js';
import { loadModel } from '../../io/files.js';
import { assertValid } from '../../ir/verify.js';
import { defaultRegistry } from '../../ops/index.js';
import { applyInputShapes } from '../../ops/infer.js';
import { randomFeeds } from '../../runtime/feeds.js';
import { nodeBackend } from '../../runtime/node.js';
import { table } from '../format.js';
import { bindUnnamedShape, parseInputShapes, parseInteger } from '../options.js';
import { print, printJson } from '../output.js';
import { progressBar } from '../progress.js';

interface BenchFlags {
  threads?: string;
  runs: string;
  warmup: string;
  inputShape?: string[];
  seed: string;
  json?: boolean;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description(
      'inference latency on onnxruntime (median and 90th percentile after warm-up) and peak memory; several models are timed in alternation, with spinning threads off',
    )
    .argument('<models...>', 'model files (the first is the baseline of the ratios)')
    .option('--threads <n>', 'intra-op threads for onnxruntime')
    .option('--runs <n>', 'timed runs per model', '50')
    .option('--warmup <n>', 'untimed runs first', '5')
    .option('--input-shape <name:dims...>', 'fix input dims (free dims are otherwise 1 for the batch and 32 elsewhere)')
    .option('--seed <n>', 'seed of the random inputs', '0')
    .option('--json', 'print one JSON object')
    .action(async (paths: string[], opts: BenchFlags) => {
      const runs = parseInteger('--runs', opts.runs, 1);
      const warmup = parseInteger('--warmup', opts.warmup, 0);
      const threads = opts.threads === undefined ? undefined : parseInteger('--threads', opts.threads, 1);
      const seed = parseInteger('--seed', opts.seed);
      if (new Set(paths).size !== paths.length) throw badInput('bench: a model is named twice');
      const registry = defaultRegistry();
      const models = paths.map((path) => {
        const model = loadModel(path);
        assertValid(model, path, { registry });
        const names = model.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
        const shapes = bindUnnamedShape(parseInputShapes(opts.inputShape), names);
        if (shapes) applyInputShapes(model.graph, shapes);
        return { name: path, model, feeds: randomFeeds(model, seed) };
      });
      const bar = opts.json ? undefined : progressBar('benchmarking', (runs + warmup) * models.length, 'runs');
      const results = await measureLatency(models, nodeBackend(), { threads, runs, warmup, onProgress: (d) => bar?.update(d) });
      bar?.stop();
      const peakRssMB = process.resourceUsage().maxRSS / 1024;
      const base = results[0].medianMs;
      const withRatio = results.map((r) => ({ ...r, ratio: r.medianMs / base }));
      if (opts.json) return printJson({ threads: threads ?? null, spinning: models.length === 1, results: withRatio, peakRssMB });
      print(
        table([
          ['model', 'median', 'p90', 'mean', 'min', ...(models.length > 1 ? ['median / first'] : [])],
          ...withRatio.map((r) => [
            r.name,
            `${r.medianMs.toFixed(2)} ms`,
            `${r.p90Ms.toFixed(2)} ms`,
            `${r.meanMs.toFixed(2)} ms`,
            `${r.minMs.toFixed(2)} ms`,
            ...(models.length > 1 ? [`${r.ratio.toFixed(2)}x`] : []),
          ]),
        ]),
      );
      print(
        `${runs} timed runs after ${warmup} warm-up${threads ? `, ${threads} threads` : ''}${models.length > 1 ? ', in alternation, threads not spinning' : ''}; peak RSS ${peakRssMB.toFixed(0)} MB (whole process)`,
      );
    });
}
