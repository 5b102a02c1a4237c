/**
 * The TFLite exporter: IR (ONNX op set, static shapes, already optimized) → TfliteModel, which
 * `writeTflite` serialises.
 *
 *   const { tflite, report } = await exportTflite(model, { precision: 'int8', calib, backend });
 *   writeFileAtomically('model.tflite', writeTflite(tflite));
 *
 * Precisions: fp32; fp16 (float16 weights behind DEQUANTIZE); dynamic (int8 weights, float
 * activations); int8 (full integer per TFLite's quantization spec, from a QDQ model's scales or
 * by calibrating here). Layout: NHWC inside; with io 'nchw' (default) rank-4 inputs and outputs
 * keep ONNX's NCHW and a TRANSPOSE sits at each of them, with io 'nhwc' they are NHWC and a conv
 * net has no TRANSPOSE at all. Each node that cannot be lowered is refused with one line naming
 * it, its op and why (builtins only, never Flex ops).
 */
import type { Dataset } from '../../../data/dataset.js';
import { badInput } from '../../../errors.js';
import type { Model, Value } from '../../../ir/graph.js';
import { defaultRegistry } from '../../../ops/index.js';
import { inferShapes } from '../../../ops/infer.js';
import { calibrate } from '../../../quantize/calibrate.js';
import type { Backend } from '../../../runtime/backend.js';
import { readOnnx } from '../../onnx/read.js';
import { writeOnnx } from '../../onnx/write.js';
import { Builtin, type TfliteModel } from '../model.js';
import type { Precision } from './context.js';
import { lowerModel } from './lower.js';
import { isQdq, stripQdq } from './qdq.js';
import { type ActivationParams, paramsForInt8Range } from './quant.js';

export interface TfliteExportOptions {
  precision?: Precision;
  /** Layout of rank-4 inputs and outputs (default nchw, as the ONNX model has them). */
  io?: 'nchw' | 'nhwc';
  /** int8 precision: element type of inputs and outputs (default float, with QUANTIZE/DEQUANTIZE inside). */
  ioType?: 'float' | 'int8' | 'uint8';
  /** int8 precision without a QDQ model: calibration samples. */
  calib?: Dataset;
  /** Samples to calibrate on (default 256). */
  calibSize?: number;
  /** Runs calibration (onnxruntime-node in Node). */
  backend?: Backend;
  onProgress?: (done: number, total: number) => void;
}

export interface TfliteExportReport {
  operators: number;
  opHistogram: Record<string, number>;
  transposes: number;
  tensors: number;
  precision: string;
  notes: string[];
}

const PRECISIONS: readonly Precision[] = ['fp32', 'fp16', 'dynamic', 'int8'];

function checkOptions(o: TfliteExportOptions): Required<Pick<TfliteExportOptions, 'precision' | 'io' | 'ioType'>> {
  const precision = o.precision ?? 'fp32';
  const io = o.io ?? 'nchw';
  const ioType = o.ioType ?? 'float';
  if (!PRECISIONS.includes(precision)) throw badInput(`unknown precision "${precision}": use fp32, fp16, dynamic or int8`);
  if (io !== 'nchw' && io !== 'nhwc') throw badInput(`unknown io layout "${io}": use nchw or nhwc`);
  if (!['float', 'int8', 'uint8'].includes(ioType)) throw badInput(`unknown io type "${ioType}": use float, int8 or uint8`);
  if (ioType !== 'float' && precision !== 'int8') throw badInput(`--io-type ${ioType} needs --precision int8`);
  return { precision, io, ioType };
}

/** Float activation values (inputs and node outputs) that have no parameters yet. */
function unobserved(model: Model, params: ReadonlyMap<Value, ActivationParams>): Value[] {
  const g = model.graph;
  const out: Value[] = [];
  const isFloat = (v: Value) => v.type?.kind === 'tensor' && v.type.dtype === 'float32';
  for (const v of g.inputs) if (!v.initializer && isFloat(v) && !params.has(v)) out.push(v);
  for (const n of g.nodes) for (const v of n.outputs) if (v && isFloat(v) && !params.has(v)) out.push(v);
  return out;
}

async function int8Params(
  model: Model,
  options: TfliteExportOptions,
  notes: string[],
): Promise<{ params: Map<Value, ActivationParams>; io: Map<string, 'int8' | 'uint8'> }> {
  const qdq = isQdq(model);
  const { params, io } = qdq ? stripQdq(model) : { params: new Map<Value, ActivationParams>(), io: new Map<string, 'int8' | 'uint8'>() };
  if (qdq) notes.push(`int8 parameters of ${params.size} tensors read from the QDQ model's QuantizeLinear nodes`);
  if (!options.calib) {
    if (!qdq) throw badInput('int8 export needs calibration data (--calib) or a QDQ model made by mobilize quantize');
    return { params, io };
  }
  if (!options.backend) throw badInput('int8 calibration needs a backend to run the model on');
  const todo = unobserved(model, params);
  if (todo.length === 0) return { params, io };
  const cal = await calibrate(model, todo, options.calib, {
    method: 'minmax',
    observer: { dtype: 'int8', symmetric: false },
    backend: options.backend,
    calibSize: options.calibSize,
    onProgress: options.onProgress,
  });
  for (const [v, [lo, hi]] of cal.ranges) params.set(v, paramsForInt8Range(lo, hi));
  notes.push(`calibrated ${cal.ranges.size} tensors on ${cal.samples} samples of ${options.calib.name} (min/max)`);
  return { params, io };
}

export async function exportTflite(
  model: Model,
  options: TfliteExportOptions = {},
): Promise<{ tflite: TfliteModel; report: TfliteExportReport }> {
  const settings = checkOptions(options);
  const notes: string[] = [];
  let work = model;
  let params = new Map<Value, ActivationParams>();
  let io = new Map<string, 'int8' | 'uint8'>();
  if (settings.precision === 'int8') {
    // Removing Q/DQ pairs rewrites the graph: work on a copy so the caller's model is untouched.
    if (isQdq(model)) work = readOnnx(writeOnnx(model).model);
    inferShapes(work, { registry: defaultRegistry() });
    ({ params, io } = await int8Params(work, options, notes));
    if (io.size > 0) notes.push(`the model's own 8-bit inputs/outputs stay 8-bit: ${[...io].map(([n, t]) => `${n} (${t})`).join(', ')}`);
  } else {
    if (isQdq(model)) throw badInput(`the model is quantized (QuantizeLinear/DequantizeLinear nodes): export it with --precision int8`);
    inferShapes(work, { registry: defaultRegistry() });
  }
  const ctx = lowerModel(work, { ...settings, ioOverrides: io }, params);
  notes.push(...ctx.notes);
  if (ctx.floatOps.size > 0) {
    const list = [...ctx.floatOps].map(([op, n]) => `${op} ×${n}`).join(', ');
    notes.push(`ops left in float (no int8 parameters or no int8 kernel): ${list}`);
  }
  const b = ctx.b;
  return {
    tflite: b.model,
    report: {
      operators: b.sub.operators.length,
      opHistogram: b.histogram(),
      transposes: b.count(Builtin.TRANSPOSE),
      tensors: b.sub.tensors.length,
      precision: settings.precision,
      notes,
    },
  };
}
