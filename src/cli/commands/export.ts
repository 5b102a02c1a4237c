/** `mobilize export`: a model to TFLite (or optimized ONNX for onnxruntime Mobile), verified on the real runtime. */
import type { Command } from 'commander';
import { openDataset } from '../../data/spec.js';
import { badInput, checkFailed, isMobilizeError } from '../../errors.js';
import { assertNotInput, loadModel, saveModel, writeFileAtomically } from '../../io/files.js';
import { assertValid } from '../../ir/verify.js';
import { defaultRegistry } from '../../ops/index.js';
import { type ExportPrecision, type ExportTarget, type ExportVerifyReport, exportModel, verifyExport } from '../../pipeline/export.js';
import { nodeBackend } from '../../runtime/node.js';
import { addDataOptions, type DataFlags, preprocessFrom } from '../data-options.js';
import { formatBytes, formatNumber } from '../format.js';
import { bindUnnamedShape, parseInputShapes, parseInteger } from '../options.js';
import { print, printJson } from '../output.js';
import { progressBar } from '../progress.js';
import { parseTolerance, printVerifyReport } from './verify.js';

interface ExportFlags extends DataFlags {
  target: string;
  output: string;
  precision: string;
  calib?: string;
  calibSize?: string;
  io?: string;
  ioType?: string;
  inputShape?: string[];
  verify: boolean;
  verifySize: string;
  tolerance?: string;
  json?: boolean;
}

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw badInput(`${flag} ${value}: expected ${allowed.join(', ')}`);
  return value as T;
}

export function registerExport(program: Command): void {
  const cmd = program
    .command('export')
    .description('export a model for a phone runtime (TFLite, or optimized ONNX for onnxruntime Mobile) and verify it on that runtime')
    .argument('<model>', 'input model (ONNX, or anything mobilize reads)')
    .requiredOption('--target <target>', 'tflite or onnx')
    .requiredOption('-o, --output <file>', 'output file (never the input)')
    .option(
      '--precision <p>',
      'tflite: fp32, fp16 (fp16 weights), dynamic (int8 weights, float activations) or int8 (full integer)',
      'fp32',
    )
    .option(
      '--calib <spec>',
      'int8 calibration data: fashion-mnist[:train|:test], .npy/.npz, or an image folder (not needed for a QDQ model)',
    )
    .option('--calib-size <n>', 'calibration samples to use')
    .option('--io <layout>', 'tflite: nchw (inputs and outputs as the model has them) or nhwc (no Transposes at all)')
    .option('--io-type <type>', 'tflite int8: float, int8 or uint8 inputs and outputs')
    .option('--input-shape <name:dims...>', 'fix input dims (TFLite needs static shapes), e.g. input:1x3x224x224')
    .option('--no-verify', 'skip running the export on the real runtime against the input model')
    .option('--verify-size <n>', 'samples of --calib to verify on (random inputs without --calib)', '100')
    .option(
      '--tolerance <r>',
      "largest error relative to an output's scale that passes the check (default per precision: fp32 1e-4, fp16 1e-2, dynamic 5e-2, int8 0.15)",
    )
    .option('--json', 'print one JSON object');
  addDataOptions(cmd);
  cmd.action(async (input: string, opts: ExportFlags) => {
    const target = oneOf<ExportTarget>('--target', opts.target, ['tflite', 'onnx']) as ExportTarget;
    const precision = oneOf<ExportPrecision>('--precision', opts.precision, ['fp32', 'fp16', 'dynamic', 'int8']) as ExportPrecision;
    const io = oneOf('--io', opts.io, ['nchw', 'nhwc'] as const);
    const ioType = oneOf('--io-type', opts.ioType, ['float', 'int8', 'uint8'] as const);
    const tolerance = opts.tolerance === undefined ? undefined : parseTolerance(opts.tolerance);
    const calibSize = opts.calibSize === undefined ? undefined : parseInteger('--calib-size', opts.calibSize, 1);
    const verifySize = parseInteger('--verify-size', opts.verifySize, 1);
    if (ioType && ioType !== 'float' && precision !== 'int8') throw badInput(`--io-type ${ioType} needs --precision int8`);
    assertNotInput(opts.output, [input]);
    const model = loadModel(input);
    assertValid(model, input, { registry: defaultRegistry() });
    const inputs = model.graph.inputs.filter((v) => !v.initializer);
    const inputShapes = bindUnnamedShape(
      parseInputShapes(opts.inputShape),
      inputs.map((v) => v.name),
    );
    const calib = opts.calib
      ? openDataset(opts.calib, { defaultSplit: 'train', input: inputs.length === 1 ? inputs[0] : undefined, ...preprocessFrom(opts) })
      : undefined;
    const backend = nodeBackend();
    let bar: ReturnType<typeof progressBar> | undefined;
    const result = await exportModel(model, {
      target,
      precision,
      io,
      ioType,
      calib,
      calibSize,
      inputShapes,
      backend,
      onProgress: (stage, done, total) => {
        if (opts.json) return;
        bar ??= progressBar(stage, total, 'samples');
        bar.update(done);
      },
    });
    bar?.stop();
    const report = result.report;
    if (result.tflite) writeFileAtomically(opts.output, result.tflite);
    else if (result.onnx) report.bytes = saveModel(result.onnx, opts.output, { protect: [input] }).bytes;

    let verify: ExportVerifyReport | undefined;
    let failure: string | undefined;
    if (opts.verify) {
      const limit = calib ? Math.min(verifySize, calib.size) : undefined;
      const vbar = opts.json || !calib ? undefined : progressBar('verifying', limit ?? 0, 'samples');
      try {
        verify = await verifyExport(result, precision, {
          backend,
          data: calib,
          limit,
          tolerance,
          io,
          name: opts.output,
          onProgress: (done) => vbar?.update(done),
        });
        if (!verify.passed) {
          failure = `${opts.output} was written but does not compute what ${input} does on ${verify.runtime === 'tflite' ? 'the TFLite interpreter' : 'onnxruntime'}: outputs off by up to ${formatNumber(verify.worst)} of their scale (tolerance ${verify.tolerance}); the file is kept for inspection`;
        }
      } catch (e) {
        // The runtime refusing our own output is a failed check, not bad input.
        if (!isMobilizeError(e)) throw e;
        failure = `${opts.output} was written but ${e.message}; the file is kept for inspection`;
      } finally {
        vbar?.stop();
      }
    }
    if (opts.json) {
      printJson({
        input,
        output: opts.output,
        ...report,
        verify: verify ?? (opts.verify ? { passed: false, error: failure } : { skipped: 'not requested' }),
      });
    } else {
      const t = report.tflite;
      print(
        `${input} → ${opts.output} (${target}${target === 'tflite' ? ` ${precision}` : ''}, ${formatBytes(report.bytes)}) in ${(report.ms.total / 1000).toFixed(2)} s`,
      );
      for (const note of report.notes) print(`  note: ${note}`);
      if (t) {
        const hist = Object.entries(t.opHistogram)
          .sort((a, b) => b[1] - a[1])
          .map(([op, n]) => `${op} ${n}`)
          .join(', ');
        print(`  ${t.operators} operators: ${hist}`);
        print(`  ${t.transposes} TRANSPOSE${t.transposes === 1 ? '' : 's'}, ${t.tensors} tensors`);
        for (const note of t.notes) print(`  note: ${note}`);
      } else {
        print(`  ${report.nodes.before} → ${report.nodes.after} nodes`);
      }
      if (verify?.tflite) printVerifyReport(verify.tflite);
      else if (verify) print(`verified on onnxruntime: largest relative difference ${formatNumber(verify.worst)}`);
      else if (!opts.verify) print('not verified (--no-verify)');
    }
    if (failure) throw checkFailed(failure);
  });
}
