/**
 * `export`: a model carried to a phone runtime. Input shapes are fixed, the optimizer runs (BN
 * folded, no-ops gone, activations marked for fusion), then the target's exporter lowers the
 * graph: TFLite (fp32, fp16, dynamic-range or full int8) or ONNX for onnxruntime Mobile. The
 * result is then checked on the real runtime — the TFLite interpreter (WASM) or onnxruntime —
 * against the model as given (`verifyExport`).
 */
import type { Dataset } from '../data/dataset.js';
import { badInput } from '../errors.js';
import { compareModels } from '../eval/equivalence.js';
import { readOnnx } from '../formats/onnx/read.js';
import { writeOnnx } from '../formats/onnx/write.js';
import { exportTflite, type TfliteExportReport } from '../formats/tflite/export/index.js';
import { writeTflite } from '../formats/tflite/write.js';
import type { Model } from '../ir/graph.js';
import type { Shape } from '../ir/types.js';
import { applyInputShapes } from '../ops/infer.js';
import type { Backend } from '../runtime/backend.js';
import { requiredInputs } from '../runtime/feeds.js';
import type { IoLayout } from '../runtime/tflite-io.js';
import { optimizeModel } from './optimize.js';
import { TFLITE_TOLERANCE, type TfliteVerifyReport, verifyTflite } from './verify.js';

export type ExportTarget = 'tflite' | 'onnx';
export type ExportPrecision = 'fp32' | 'fp16' | 'dynamic' | 'int8';

export interface ExportOptions {
  target: ExportTarget;
  precision?: ExportPrecision;
  /** TFLite: nchw keeps the model's rank-4 inputs/outputs (Transposes at the boundary), nhwc takes and gives NHWC (none). */
  io?: 'nchw' | 'nhwc';
  /** TFLite int8: the type of inputs and outputs (float keeps float I/O with QUANTIZE/DEQUANTIZE at the boundary). */
  ioType?: 'float' | 'int8' | 'uint8';
  /** Calibration data for int8 (a QDQ model carries its own scales and needs none). */
  calib?: Dataset;
  calibSize?: number;
  inputShapes?: Record<string, Shape>;
  backend: Backend;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface ExportReport {
  target: ExportTarget;
  precision: ExportPrecision;
  /** File size; for the ONNX target the caller fills it in when it saves the model. */
  bytes: number;
  ms: { optimize: number; export: number; total: number };
  nodes: { before: number; after: number };
  /** What the recipe decided for the user (a batch dim fixed to 1, say). */
  notes: string[];
  /** The TFLite exporter's report: operators, op histogram, Transposes, tensors, notes. */
  tflite?: TfliteExportReport;
}

/**
 * TFLite takes static shapes: a free leading (batch) dim becomes 1, as a phone runs one sample
 * at a time. Other free dims are left for the exporter to name (they need --input-shape).
 */
function fixBatchDims(model: Model, notes: string[]): void {
  const shapes: Record<string, Shape> = {};
  for (const v of requiredInputs(model)) {
    const shape = v.type?.kind === 'tensor' ? v.type.shape : undefined;
    if (!shape || shape.length < 2 || typeof shape[0] === 'number') continue;
    shapes[v.name] = [1, ...shape.slice(1)];
    notes.push(`input "${v.name}": batch dim ${shape[0] ?? '?'} fixed to 1 (choose another with --input-shape)`);
  }
  if (Object.keys(shapes).length > 0) applyInputShapes(model.graph, shapes);
}

export interface ExportResult {
  /** The .tflite file's bytes (target tflite). */
  tflite?: Uint8Array;
  /** The optimized model (target onnx), to be saved with saveModel. */
  onnx?: Model;
  report: ExportReport;
  /** The model as given (input shapes fixed), serialized: what the export is verified against. */
  reference: Uint8Array;
}

export async function exportModel(model: Model, options: ExportOptions): Promise<ExportResult> {
  const precision = options.precision ?? 'fp32';
  if (options.target === 'onnx' && precision !== 'fp32') {
    throw badInput(
      `--precision ${precision} is for --target tflite; for ONNX quantize first with mobilize quantize, then export the result`,
    );
  }
  if (options.target !== 'tflite' && (options.io !== undefined || options.ioType !== undefined)) {
    throw badInput('--io and --io-type are for --target tflite');
  }
  const t0 = performance.now();
  const notes: string[] = [];
  if (options.inputShapes) applyInputShapes(model.graph, options.inputShapes);
  if (options.target === 'tflite') fixBatchDims(model, notes);
  const reference = writeOnnx(model).model;
  const optimized = await optimizeModel(model, { level: 'basic' });
  const t1 = performance.now();
  const nodes = { before: optimized.nodesBefore, after: optimized.nodesAfter };
  if (options.target === 'onnx') {
    return {
      onnx: model,
      reference,
      report: { target: 'onnx', precision, bytes: 0, ms: { optimize: t1 - t0, export: 0, total: t1 - t0 }, nodes, notes },
    };
  }
  const { tflite, report } = await exportTflite(model, {
    precision,
    io: options.io,
    ioType: options.ioType,
    calib: options.calib,
    calibSize: options.calibSize,
    backend: options.backend,
    onProgress: options.onProgress ? (done, total) => options.onProgress?.('calibrating', done, total) : undefined,
  });
  const bytes = writeTflite(tflite);
  const t2 = performance.now();
  return {
    tflite: bytes,
    reference,
    report: {
      target: 'tflite',
      precision,
      bytes: bytes.byteLength,
      ms: { optimize: t1 - t0, export: t2 - t1, total: t2 - t0 },
      nodes,
      notes,
      tflite: report,
    },
  };
}

/** Default tolerance of the check per precision: float32 is exact up to rounding; the rest are not. */
export const EXPORT_TOLERANCE: Record<ExportPrecision, number> = {
  fp32: TFLITE_TOLERANCE,
  fp16: 1e-2,
  dynamic: 5e-2,
  int8: 0.15,
};

export interface ExportVerifyOptions {
  backend: Backend;
  /** Verify on these samples (e.g. the calibration data); random inputs otherwise. */
  data?: Dataset;
  limit?: number;
  tolerance?: number;
  name?: string;
  io?: 'nchw' | 'nhwc';
  onProgress?: (done: number, total: number) => void;
}

export interface ExportVerifyReport {
  runtime: 'tflite' | 'onnxruntime';
  passed: boolean;
  worst: number;
  tolerance: number;
  tflite?: TfliteVerifyReport;
}

/** Runs the export on its real runtime against the model as given. */
export async function verifyExport(
  result: ExportResult,
  precision: ExportPrecision,
  options: ExportVerifyOptions,
): Promise<ExportVerifyReport> {
  const tolerance = options.tolerance ?? EXPORT_TOLERANCE[precision];
  const reference = readOnnx(result.reference);
  if (result.tflite) {
    const layout: IoLayout = options.io === 'nhwc' ? 'nhwc' : options.io === 'nchw' ? 'same' : 'auto';
    const report = await verifyTflite(result.tflite, reference, {
      backend: options.backend,
      data: options.data,
      limit: options.limit,
      tolerance,
      layout,
      name: options.name,
      onProgress: options.onProgress,
    });
    return { runtime: 'tflite', passed: report.passed, worst: report.worst, tolerance, tflite: report };
  }
  const agreement = await compareModels(reference, result.onnx as Model, options.backend);
  const passed = agreement.outputs.every((o) => o.maxAbsDiff <= Math.max(tolerance * o.scale, 1e-6));
  return { runtime: 'onnxruntime', passed, worst: agreement.worst, tolerance };
}
