/** `mobilize verify`: a .tflite model on the real TFLite interpreter against its ONNX reference on onnxruntime. */
import type { Command } from 'commander';
import { openDataset } from '../../data/spec.js';
import { badInput, checkFailed } from '../../errors.js';
import { loadModel, readFileBytes } from '../../io/files.js';
import { assertValid } from '../../ir/verify.js';
import { defaultRegistry } from '../../ops/index.js';
import { applyInputShapes } from '../../ops/infer.js';
import { TFLITE_TOLERANCE, type TfliteVerifyReport, verifyTflite } from '../../pipeline/verify.js';
import { nodeBackend } from '../../runtime/node.js';
import type { IoLayout } from '../../runtime/tflite-io.js';
import { addDataOptions, type DataFlags, preprocessFrom } from '../data-options.js';
import { formatNumber, table } from '../format.js';
import { bindUnnamedShape, parseInputShapes, parseInteger } from '../options.js';
import { print, printJson } from '../output.js';
import { progressBar } from '../progress.js';

interface VerifyFlags extends DataFlags {
  reference: string;
  data?: string;
  limit?: string;
  samples: string;
  seed: string;
  tolerance?: string;
  io: string;
  inputShape?: string[];
  json?: boolean;
}

export function parseTolerance(text: string): number {
  const t = Number(text);
  if (!Number.isFinite(t) || t < 0)
    throw badInput(`--tolerance ${text}: expected a number ≥ 0 (largest error relative to an output's scale, e.g. 1e-4)`);
  return t;
}

function parseIoLayout(text: string): IoLayout {
  if (text === 'auto') return 'auto';
  if (text === 'nchw') return 'same';
  if (text === 'nhwc') return 'nhwc';
  throw badInput(`--io ${text}: expected auto, nchw or nhwc`);
}

const db = (x: number): string => (x === Number.POSITIVE_INFINITY ? 'identical' : `${x.toFixed(1)} dB`);

/** The report as lines for a terminal. */
export function printVerifyReport(r: TfliteVerifyReport): void {
  print(
    `${r.tflite} on the TFLite interpreter (${r.build === 'simd' ? 'WASM SIMD' : 'WASM'}) against onnxruntime, ${r.samples} ${r.source === 'random inputs' ? 'random inputs' : `samples of ${r.source}`}:`,
  );
  for (const i of r.inputs) {
    const how = [
      i.transposed ? 'transposed' : '',
      i.quantized ? `${i.quantized.dtype} scale ${formatNumber(i.quantized.scale)} zero point ${i.quantized.zeroPoint}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    if (how || i.tflite !== i.reference) print(`  input ${i.tflite} ← ${i.reference}${how ? ` (${how})` : ''}`);
  }
  const rows = [['output', 'max abs', 'max rel', 'cosine', 'SQNR', 'top-1', '']];
  for (const o of r.outputs) {
    rows.push([
      o.tflite === o.name ? o.name : `${o.tflite} ← ${o.name}`,
      formatNumber(o.maxAbsDiff),
      formatNumber(o.relDiff),
      o.cosine.toFixed(6),
      db(o.sqnrDb),
      o.top1Agreement === undefined ? '-' : `${(o.top1Agreement * 100).toFixed(2)}%`,
      o.passed ? 'ok' : 'FAIL',
    ]);
  }
  print(table(rows));
  if (r.accuracy)
    print(`  top-1 accuracy: tflite ${(r.accuracy.tflite * 100).toFixed(2)}%, reference ${(r.accuracy.reference * 100).toFixed(2)}%`);
}

export function registerVerify(program: Command): void {
  const cmd = program
    .command('verify')
    .description('run a .tflite model on the real TFLite interpreter (WASM) and its ONNX reference on onnxruntime, and compare the outputs')
    .argument('<model.tflite>', 'the TFLite model')
    .requiredOption('--reference <model>', 'the model it should compute (ONNX, or anything mobilize reads)')
    .option('--data <spec>', 'run on a dataset instead of random inputs: fashion-mnist[:train|:test], .npy/.npz, or an image folder')
    .option('--limit <n>', 'use only the first n samples of --data')
    .option('--samples <n>', 'random input sets to run without --data', '3')
    .option('--seed <n>', 'seed of the random inputs', '0')
    .option('--tolerance <r>', `largest error relative to an output's scale that passes (default ${TFLITE_TOLERANCE})`)
    .option(
      '--io <layout>',
      'how the .tflite lays out rank-3+ inputs and outputs: auto (from the shapes), nchw (as the reference) or nhwc',
      'auto',
    )
    .option('--input-shape <name:dims...>', "fix the reference's free input dims (e.g. input:1x3x224x224)")
    .option('--json', 'print one JSON object (an SQNR of null means identical outputs)');
  addDataOptions(cmd);
  cmd.action(async (path: string, opts: VerifyFlags) => {
    const tolerance = opts.tolerance === undefined ? TFLITE_TOLERANCE : parseTolerance(opts.tolerance);
    const layout = parseIoLayout(opts.io);
    const samples = parseInteger('--samples', opts.samples, 1);
    const seed = parseInteger('--seed', opts.seed, 0);
    const limit = opts.limit === undefined ? undefined : parseInteger('--limit', opts.limit, 1);
    const bytes = readFileBytes(path, 'TFLite model');
    const reference = loadModel(opts.reference);
    assertValid(reference, opts.reference, { registry: defaultRegistry() });
    const inputs = reference.graph.inputs.filter((v) => !v.initializer);
    const shapes = bindUnnamedShape(
      parseInputShapes(opts.inputShape),
      inputs.map((v) => v.name),
    );
    if (shapes) applyInputShapes(reference.graph, shapes);
    const data = opts.data
      ? openDataset(opts.data, { defaultSplit: 'test', input: inputs.length === 1 ? inputs[0] : undefined, ...preprocessFrom(opts) })
      : undefined;
    const total = data ? Math.min(limit ?? data.size, data.size) : samples;
    const bar = opts.json || total < 50 ? undefined : progressBar('verifying', total, data ? 'samples' : 'runs');
    const report = await verifyTflite(bytes, reference, {
      backend: nodeBackend(),
      data,
      limit,
      samples,
      seed,
      tolerance,
      layout,
      name: path,
      onProgress: (done) => bar?.update(done),
    });
    bar?.stop();
    if (opts.json) printJson({ model: path, reference: opts.reference, ...report });
    else printVerifyReport(report);
    if (!report.passed) {
      const bad = report.outputs.filter((o) => !o.passed);
      throw checkFailed(
        `${path} does not match ${opts.reference}: ${bad.map((o) => `${o.name} off by ${formatNumber(o.relDiff)} of its scale`).join(', ')} (tolerance ${tolerance})`,
      );
    }
  });
}
