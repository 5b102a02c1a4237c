import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { openDataset } from '../../data/spec.js';
import { badInput } from '../../errors.js';
import { assertNotInput, loadModel, saveModel } from '../../io/files.js';
import { assertValid } from '../../ir/verify.js';
import { defaultRegistry } from '../../ops/index.js';
import { applyInputShapes } from '../../ops/infer.js';
import { DEFAULT_CALIB_BATCH, DEFAULT_CALIB_SIZE, singleInput } from '../../quantize/calibrate.js';
import { CALIBRATION_METHODS, findScheme, isCalibrationMethod, quantizeModel, SCHEMES, schemeNames } from '../../quantize/index.js';
import { checkBlockSize } from '../../quantize/weight-only.js';
import { nodeBackend } from '../../runtime/node.js';
import { addDataOptions, type DataFlags, preprocessFrom } from '../data-options.js';
import { formatBytes } from '../format.js';
import { bindUnnamedShape, parseInputShapes, parseInteger } from '../options.js';
import { print, printJson } from '../output.js';
import { progressBar } from '../progress.js';
import {
  addQualityOptions,
  openQualityData,
  parseQualityFlags,
  printQuality,
  type QualityFlags,
  qualityFailure,
  stageProgress,
} from './quantize-quality.js';

interface QuantizeFlags extends DataFlags, QualityFlags {
  output: string;
  scheme: string;
  perTensor?: boolean;
  perChannel?: boolean;
  symmetricActivations?: boolean;
  calib?: string;
  calibMethod: string;
  calibSize: string;
  calibBatch: string;
  percentile?: string;
  exclude?: string[];
  inputShape?: string[];
  activations?: boolean;
  blockSize?: string;
  keepIoTypes: boolean;
  fp16Block?: string[];
  threads?: string;
  externalData?: boolean;
  json?: boolean;
}

export function registerQuantize(program: Command): void {
  const cmd = program
    .command('quantize')
    .description(
      "quantize a model: static int8 in QDQ form (int8 weights, calibrated 8-bit activations; the default), the seed's linear and log2 formulas, fp16, weight-only int8/int4; onnxruntime runs the result",
    )
    .argument('<in>', 'input model')
    .requiredOption('-o, --output <file>', 'output .onnx file (never the input)')
    .option('--scheme <name>', SCHEMES.map((s) => `${s.param ? `${s.name}:<${s.param}>` : s.name}: ${s.summary}`).join('; '), 'uint8')
    .option('--per-channel', 'one weight scale per output channel (the default, except for linear and log2: per tensor)')
    .option('--per-tensor', 'one weight scale per tensor')
    .option('--symmetric-activations', 'activation zero point 0 (no ReLU is folded into the grid then)')
    .option(
      '--calib <data>',
      'calibration data: fashion-mnist[:train|:test] (default split: train), an .npy/.npz of inputs, or an image folder',
    )
    .option('--calib-method <method>', `how each activation's range is chosen: ${CALIBRATION_METHODS.join(', ')}`, 'minmax')
    .option('--calib-size <n>', 'calibration samples to use', String(DEFAULT_CALIB_SIZE))
    .option('--calib-batch <n>', 'calibration batch size', String(DEFAULT_CALIB_BATCH))
    .option('--percentile <p>', 'with --calib-method percentile: the percentile kept (default 99.99)')
    .option('--exclude <ops|nodes...>', 'op types (Conv, MatMul, …) or node names kept in float')
    .option('--activations', 'linear:<b>: quantize the activations too, on the same b-bit grid (needs --calib)')
    .option('--block-size <n>', 'weight-int4: input features per block (a power of two from 16)', '32')
    .option('--no-keep-io-types', 'fp16: make the graph inputs and outputs float16 too (default: they stay float32)')
    .option('--fp16-block <ops|nodes...>', 'fp16: op types or node names kept in float32 besides the built-in list')
    .option('--input-shape <name:dims...>', 'fix input dims (needed to size images for a model with a free image size)')
    .option('--threads <n>', 'intra-op threads for onnxruntime')
    .option('--external-data', 'store weights in <output>.data next to the model')
    .option('--json', 'print one JSON object');
  addQualityOptions(cmd);
  addDataOptions(cmd);
  cmd.action(async (input: string, opts: QuantizeFlags) => {
    // Every flag and the data are checked before any work, so bad input writes nothing.
    const { scheme } = findScheme(opts.scheme);
    if (!isCalibrationMethod(opts.calibMethod)) {
      throw badInput(`--calib-method ${opts.calibMethod}: expected one of ${CALIBRATION_METHODS.join(', ')}`);
    }
    if (opts.perTensor && opts.perChannel) throw badInput('--per-tensor and --per-channel contradict each other; give one');
    if (opts.activations && scheme.name !== 'linear')
      throw badInput(`--activations goes with --scheme linear:<b>; ${scheme.name} sets its own activations`);
    const calibSize = parseInteger('--calib-size', opts.calibSize, 1);
    const batchSize = parseInteger('--calib-batch', opts.calibBatch, 1);
    const threads = opts.threads === undefined ? undefined : parseInteger('--threads', opts.threads, 1);
    const blockSize = checkBlockSize(parseInteger('--block-size', opts.blockSize ?? '32', 16));
    const percentile = opts.percentile === undefined ? undefined : Number(opts.percentile);
    if (percentile !== undefined && !(percentile > 50 && percentile <= 100)) {
      throw badInput(`--percentile ${opts.percentile}: expected a number in (50, 100]`);
    }
    const qualityFlags = parseQualityFlags(opts);
    assertNotInput(opts.output, [input]);
    if (!existsSync(dirname(resolve(opts.output))))
      throw badInput(`-o ${opts.output}: folder ${dirname(resolve(opts.output))} does not exist`);
    if ((scheme.calibration === 'required' || (scheme.calibration === 'optional' && opts.activations)) && !opts.calib) {
      throw badInput(
        `--scheme ${opts.scheme} calibrates activations: give calibration data with --calib (schemes: ${schemeNames().join(', ')})`,
      );
    }
    const model = loadModel(input);
    const registry = defaultRegistry();
    assertValid(model, input, { registry });
    let calib: ReturnType<typeof openDataset> | undefined;
    if (opts.calib) {
      const fed = singleInput(model);
      const shapes = bindUnnamedShape(parseInputShapes(opts.inputShape), [fed.name]);
      if (shapes) applyInputShapes(model.graph, shapes);
      calib = openDataset(opts.calib, { defaultSplit: 'train', input: fed, ...preprocessFrom(opts) });
    }
    const quality = openQualityData(qualityFlags, opts, () => singleInput(model), preprocessFrom(opts));
    const stages = stageProgress(opts.json);
    const total = Math.min(calibSize, calib?.size ?? 0);
    const bar = opts.json || !calib ? undefined : progressBar('calibrating', total, 'samples');
    let report: Awaited<ReturnType<typeof quantizeModel>>;
    try {
      report = await quantizeModel(model, {
        scheme: opts.scheme,
        calib,
        method: opts.calibMethod,
        calibSize,
        batchSize,
        percentile,
        perChannel: opts.perTensor ? false : opts.perChannel ? true : undefined,
        symmetricActivations: opts.symmetricActivations ?? false,
        exclude: opts.exclude,
        activations: opts.activations ?? false,
        blockSize,
        keepIoTypes: opts.keepIoTypes,
        fp16Block: opts.fp16Block,
        backend: nodeBackend(),
        threads,
        onProgress: (done) => bar?.update(done),
        ...quality,
        onStage: stages.onStage,
      });
    } finally {
      bar?.stop();
      stages.stop();
    }
    assertValid(model, 'quantized model', { registry });
    const saved = saveModel(model, opts.output, { externalData: opts.externalData ? true : 'auto', protect: [input] });
    const failure = qualityFailure(report.quality);
    if (opts.json) {
      printJson({ input, output: saved.path, bytes: saved.bytes, ...report });
      if (failure) throw failure;
      return;
    }
    const cal = report.calibration;
    const granularity = report.perChannel === undefined ? '' : report.perChannel ? ' per channel' : ' per tensor';
    print(
      `${input}: ${report.scheme} (${report.activations} activations${report.symmetricActivations ? ', symmetric' : ''}, ${report.weights} weights${granularity})` +
        (cal ? `, calibrated on ${cal.data} (${cal.samples} samples, ${cal.method}) in ${(cal.ms / 1000).toFixed(1)} s` : ''),
    );
    const ops = Object.entries(report.quantized).map(([op, n]) => `${op} ${n}`);
    print(`  quantized: ${ops.join(', ')}`);
    for (const f of report.float) print(`  kept float: ${f.op} "${f.node}" (${f.reason})`);
    for (const n of report.notes ?? []) print(`  note: ${n}`);
    const t = report.tensors;
    if (t) {
      print(
        `  ${t.activations} activation tensors (${t.absorbed} ReLU/Clip folded into their range), ${t.weights} int8 weights, ${t.biases} int32 biases`,
      );
      if (t.biasClamped > 0) print(`  warning: ${t.biasClamped} bias values did not fit in int32 and were clamped`);
    }
    const w = report.weightBytes;
    print(`  weights ${formatBytes(w.before)} → ${formatBytes(w.after)} (${(w.after / Math.max(1, w.before)).toFixed(2)}x)`);
    printQuality(report.quality);
    print(`wrote ${saved.path} (${formatBytes(saved.bytes)})`);
    if (failure) throw failure;
  });
}
