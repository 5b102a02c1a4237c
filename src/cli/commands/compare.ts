import type { Command } from 'commander';
import { openDataset } from '../../data/spec.js';
import { badInput, checkFailed } from '../../errors.js';
import { compareOnData, type TensorAgreement } from '../../eval/agreement.js';
import { loadModel } from '../../io/files.js';
import type { Model } from '../../ir/graph.js';
import { assertValid } from '../../ir/verify.js';
import { defaultRegistry } from '../../ops/index.js';
import { applyInputShapes } from '../../ops/infer.js';
import { compareLayers, isQdqModel } from '../../quantize/layers.js';
import { nodeBackend } from '../../runtime/node.js';
import { addDataOptions, type DataFlags, preprocessFrom } from '../data-options.js';
import { formatNumber, table } from '../format.js';
import { bindUnnamedShape, parseInputShapes, parseInteger } from '../options.js';
import { print, printJson } from '../output.js';
import { progressBar } from '../progress.js';

interface CompareFlags extends DataFlags {
  data: string;
  perLayer?: boolean;
  limit?: string;
  batch: string;
  minSqnr?: string;
  inputShape?: string[];
  threads?: string;
  json?: boolean;
}

/** Per-layer comparison fetches every matched tensor: fewer samples unless asked. */
const PER_LAYER_LIMIT = 64;

function fedInputName(m: Model, path: string): string {
  const inputs = m.graph.inputs.filter((v) => !v.initializer);
  if (inputs.length !== 1) throw badInput(`${path}: compare feeds one input; the model has ${inputs.length}`);
  return inputs[0].name;
}

const db = (x: number): string => (x === Number.POSITIVE_INFINITY ? 'identical' : `${x.toFixed(1)} dB`);

function rows(list: TensorAgreement[], label: string, extra?: (t: TensorAgreement) => string): string[][] {
  return [
    [label, ...(extra ? ['op'] : []), 'cosine (mean)', 'cosine (worst)', 'SQNR', 'top-1 agreement'],
    ...list.map((o) => [
      o.name,
      ...(extra ? [extra(o)] : []),
      formatNumber(o.cosine),
      formatNumber(o.cosineMin),
      db(o.sqnrDb),
      o.top1Agreement === undefined ? '-' : `${(o.top1Agreement * 100).toFixed(2)}%`,
    ]),
  ];
}

export function registerCompare(program: Command): void {
  const cmd = program
    .command('compare')
    .description('how closely model b follows model a over real data: cosine similarity, SQNR and top-1 agreement per output')
    .argument('<a>', 'reference model (the float original)')
    .argument('<b>', 'candidate model (quantized, optimized, …)')
    .requiredOption('--data <spec>', 'fashion-mnist[:train|:test] (default split: test), an .npy/.npz of inputs, or an image folder')
    .option('--per-layer', 'also match the intermediate tensors of a float model and its QDQ version by name; SQNR per layer, worst first')
    .option('--limit <n>', `compare on the first n samples (default: all; ${PER_LAYER_LIMIT} with --per-layer)`)
    .option('--batch <n>', 'batch size', '32')
    .option('--min-sqnr <dB>', 'exit 1 when an output’s SQNR is below this')
    .option('--input-shape <name:dims...>', 'fix input dims (needed to size images for a model with a free image size)')
    .option('--threads <n>', 'intra-op threads for onnxruntime')
    .option('--json', 'print one JSON object (an SQNR of null means identical outputs)');
  addDataOptions(cmd);
  cmd.action(async (pathA: string, pathB: string, opts: CompareFlags) => {
    const limit = opts.limit === undefined ? undefined : parseInteger('--limit', opts.limit, 1);
    const batchSize = parseInteger('--batch', opts.batch, 1);
    const threads = opts.threads === undefined ? undefined : parseInteger('--threads', opts.threads, 1);
    const minSqnr = opts.minSqnr === undefined ? undefined : Number(opts.minSqnr);
    if (minSqnr !== undefined && !Number.isFinite(minSqnr)) throw badInput(`--min-sqnr ${opts.minSqnr}: expected a number of dB`);
    const registry = defaultRegistry();
    const a = loadModel(pathA);
    assertValid(a, pathA, { registry });
    const b = loadModel(pathB);
    assertValid(b, pathB, { registry });
    const nameA = fedInputName(a, pathA);
    const shapesA = bindUnnamedShape(parseInputShapes(opts.inputShape), [nameA]);
    if (shapesA) {
      applyInputShapes(a.graph, shapesA);
      applyInputShapes(b.graph, bindUnnamedShape(parseInputShapes(opts.inputShape), [fedInputName(b, pathB)]) ?? {});
    }
    if (opts.perLayer && isQdqModel(a) === isQdqModel(b)) {
      throw badInput('--per-layer compares a float model with its QDQ version; give the float model and the quantized one');
    }
    const input = a.graph.inputs.find((v) => v.name === nameA);
    const data = openDataset(opts.data, { defaultSplit: 'test', input, ...preprocessFrom(opts) });
    const total = Math.min(limit ?? data.size, data.size);
    const backend = nodeBackend();
    const bar = opts.json ? undefined : progressBar('comparing', total, 'samples');
    const result = await compareOnData(a, b, data, backend, { limit, batchSize, threads, onProgress: (d) => bar?.update(d) });
    bar?.stop();
    let layers: Awaited<ReturnType<typeof compareLayers>> | undefined;
    if (opts.perLayer) {
      const [float, qdq] = isQdqModel(a) ? [b, a] : [a, b];
      const n = Math.min(limit ?? PER_LAYER_LIMIT, data.size);
      const layerBar = opts.json ? undefined : progressBar('comparing layers', n, 'samples');
      layers = await compareLayers(float, qdq, data, backend, { limit: n, threads, onProgress: (d) => layerBar?.update(d) });
      layerBar?.stop();
    }
    const below = minSqnr === undefined ? [] : result.outputs.filter((o) => o.sqnrDb < minSqnr);
    if (opts.json) {
      printJson({ a: pathA, b: pathB, data: data.name, ...result, ...(layers ? { layers } : {}) });
    } else {
      print(`${pathB} against ${pathA} on ${data.name} (${result.samples} samples):`);
      print(table(rows(result.outputs, 'output')));
      if (result.accuracy) {
        print(`  top-1 accuracy: a ${(result.accuracy.a * 100).toFixed(2)}%, b ${(result.accuracy.b * 100).toFixed(2)}%`);
      }
      if (layers) {
        print(`per layer (${layers.length} matched tensors, worst first):`);
        const byName = new Map(layers.map((l) => [l.name, l.op]));
        print(table(rows(layers, 'tensor', (t) => byName.get(t.name) ?? '')));
      }
    }
    if (below.length > 0) {
      throw checkFailed(`SQNR below ${minSqnr} dB: ${below.map((o) => `${o.name} ${db(o.sqnrDb)}`).join(', ')}`);
    }
  });
}
