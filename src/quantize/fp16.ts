/**
 * `fp16` — float16 weights and compute. Every float32 initializer and every op that computes on
 * float32 data moves to float16, except the ops of FP16_BLOCK_LIST (and `fp16Block`, `exclude`),
 * which stay float32 with a Cast on each side. With keepIoTypes (the default) the graph's inputs
 * and outputs stay float32 and a Cast after each input and before each output converts.
 *
 * Which ops stay float32, and why — numbers, not runtime coverage:
 * - ops whose results leave float16's range (max 65504): Exp (above x ≈ 11), Pow, the
 *   accumulating reductions (ReduceSumSquare, ReduceL2, ReduceLogSumExp, ReduceProd, CumSum), and
 *   ReduceSum / ReduceMean / GlobalAveragePool when they sum more than LARGE_REDUCTION elements
 *   (or an unknown number): float16 has 11 significant bits, so a long sum stops growing;
 * - ops that rank or place (TopK, NonMaxSuppression, RoiAlign, MaxRoiPool: ties and box
 *   coordinates), signal ops (DFT, STFT, MelWeightMatrix), ops that make values from attributes
 *   (Range, Random*, Bernoulli, Multinomial, EyeLike, ConstantOfShape), and quantization ops, whose
 *   scales stay float32;
 * - ops outside the ONNX domain, and ops with subgraphs (If, Loop, Scan), which are left alone.
 * Resize keeps its scales (and roi) float32: ONNX types them separately from the data.
 *
 * Runtime coverage is another matter. onnxruntime-node 1.30's CPU provider on x86-64 has float16
 * kernels only for data movement (Reshape, Transpose, Concat, Slice, Gather, Squeeze, Unsqueeze,
 * Expand, Flatten, Identity), Clip, Max, Min, Round, Sign and LayerNormalization (measured: a
 * one-op model per op, with the graph onnxruntime optimised saved and read back). For every other
 * op — Conv, MatMul, Gemm, Add, Mul, Relu, pooling, Resize, Softmax, … — onnxruntime inserts the
 * Casts itself (its InsertCastTransformer) and computes in float32, so such a model loads and
 * runs everywhere, small on disk, and computes in float16 where a runtime has the kernels (ARM64
 * CPUs with FP16 arithmetic, mobile GPUs, Core ML, NNAPI, TFLite's GPU delegate). The block list
 * therefore guards the numbers; `fp16Block` adds ops a given runtime should run in float32.
 *
 * Initializer values beyond ±65504 are clamped to it (counted in the report); values below
 * float16's smallest subnormal (6e-8) become 0.
 */
import { badInput } from '../errors.js';
import { modelStats } from '../eval/stats.js';
import type { DType } from '../ir/dtype.js';
import { floatToHalf } from '../ir/float16.js';
import { isOnnxDomain, type Model, type Node, type Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { constantValue } from '../passes/match.js';
import type { QuantizeOptions, QuantizeReport } from './schemes.js';
import { prepareForQuantization } from './static.js';
import { countNodes, countOps, type FloatEntry, finish, GraphEditor } from './weights.js';

const ACCUMULATES = 'accumulates: overflows float16';
const MAKES_VALUES = 'makes its values from attributes';
const QUANTIZED = 'a quantization op: its scales stay float32';

/** Ops kept in float32, with why. */
export const FP16_BLOCK_LIST: Readonly<Record<string, string>> = {
  Exp: 'exp overflows float16 above 11',
  Pow: 'powers overflow float16 (x² above 256)',
  ReduceSumSquare: ACCUMULATES,
  ReduceL2: ACCUMULATES,
  ReduceLogSumExp: ACCUMULATES,
  ReduceProd: ACCUMULATES,
  CumSum: ACCUMULATES,
  TopK: 'ranks: float16 ties change the order',
  NonMaxSuppression: 'box coordinates need float32',
  RoiAlign: 'box coordinates need float32',
  MaxRoiPool: 'box coordinates need float32',
  DFT: 'signal processing needs float32',
  STFT: 'signal processing needs float32',
  MelWeightMatrix: 'signal processing needs float32',
  Range: MAKES_VALUES,
  RandomNormal: MAKES_VALUES,
  RandomNormalLike: MAKES_VALUES,
  RandomUniform: MAKES_VALUES,
  RandomUniformLike: MAKES_VALUES,
  Bernoulli: MAKES_VALUES,
  Multinomial: MAKES_VALUES,
  EyeLike: MAKES_VALUES,
  ConstantOfShape: MAKES_VALUES,
  QuantizeLinear: QUANTIZED,
  DequantizeLinear: QUANTIZED,
  DynamicQuantizeLinear: QUANTIZED,
  QLinearConv: QUANTIZED,
  QLinearMatMul: QUANTIZED,
  ConvInteger: QUANTIZED,
  MatMulInteger: QUANTIZED,
};

/** Reductions that sum more elements than this stay float32. */
export const LARGE_REDUCTION = 4096;
const REDUCTIONS = new Set(['ReduceSum', 'ReduceMean', 'GlobalAveragePool']);

/** Float inputs typed apart from the data (ONNX type constraints of their own): they stay float32. */
const FLOAT32_INPUTS: Readonly<Record<string, readonly number[]>> = { Resize: [1, 2], Upsample: [1], Dropout: [1] };
/** Float outputs typed apart from the data: LayerNormalization's Mean and InvStdDev follow stash_type (float32). */
const FLOAT32_OUTPUTS: Readonly<Record<string, readonly number[]>> = { LayerNormalization: [1, 2] };
/** Inputs of any type: read as they are, float16 or float32. */
const ANY_INPUTS: Readonly<Record<string, readonly number[]>> = { Cast: [0], CastLike: [0], Shape: [0], Size: [0] };

const FLOAT16_MAX = 65504;

type Half = 'float16' | 'float32';

function dtypeOf(v: Value | null): DType | undefined {
  return v?.type?.kind === 'tensor' ? v.type.dtype : undefined;
}

function isF32(v: Value | null): v is Value {
  return dtypeOf(v) === 'float32';
}

/** float32 data → float16 bit patterns, clamped to ±65504; returns the tensor and how many values were clamped. */
export function toFloat16(t: Tensor): { tensor: Tensor; clamped: number } {
  const x = t.toFloat32();
  const bits = new Uint16Array(x.length);
  let clamped = 0;
  for (let i = 0; i < x.length; i++) {
    let v = x[i];
    if (v > FLOAT16_MAX || v < -FLOAT16_MAX) {
      if (Number.isFinite(v)) clamped++;
      if (Number.isFinite(v)) v = v > 0 ? FLOAT16_MAX : -FLOAT16_MAX;
    }
    bits[i] = floatToHalf(v);
  }
  return { tensor: Tensor.from('float16', t.dims, bits), clamped };
}

/** Elements a reduction sums, or undefined when a dim is unknown. */
function reducedCount(node: Node): number | undefined {
  const x = node.input(0);
  const shape = x?.type?.kind === 'tensor' ? x.type.shape : undefined;
  if (!shape) return undefined;
  let axes: number[] | undefined;
  if (node.opType === 'GlobalAveragePool') axes = shape.map((_, i) => i).slice(2);
  else {
    const fromInput = node.input(1) ? constantValue(node.input(1)) : undefined;
    if (node.input(1) && !fromInput) return undefined;
    axes = fromInput ? fromInput.toNumbers() : node.ints('axes');
    if (!axes || axes.length === 0) {
      if (node.int('noop_with_empty_axes', 0)) return 1;
      axes = shape.map((_, i) => i);
    }
  }
  let n = 1;
  for (const a of axes) {
    const d = shape[a < 0 ? a + shape.length : a];
    if (typeof d !== 'number') return undefined;
    n *= d;
  }
  return n;
}

export async function fp16Convert(model: Model, options: QuantizeOptions): Promise<QuantizeReport> {
  const t0 = performance.now();
  const weightBytesBefore = modelStats(model).weightBytes;
  const nodesBefore = countNodes(model);
  prepareForQuantization(model, options.optimize !== false);
  const tOptimized = performance.now();
  const g = model.graph;
  const keepIo = options.keepIoTypes ?? true;
  const blocked = new Set([...(options.fp16Block ?? []), ...(options.exclude ?? [])]);

  // 1. Which nodes compute in float16.
  const half = new Set<Node>();
  const kept: FloatEntry[] = [];
  const position = (node: Node, i: number): 'any' | 'float32' | 'data' =>
    ANY_INPUTS[node.opType]?.includes(i) ? 'any' : FLOAT32_INPUTS[node.opType]?.includes(i) ? 'float32' : 'data';
  for (const node of g.nodes) {
    const reason = keepReason(node);
    if (reason === undefined) half.add(node);
    else if (reason) kept.push({ node: node.name || node.outputs[0]?.name || '?', op: node.opType, reason });
  }
  if (half.size === 0) {
    throw badInput(
      `nothing to convert to float16: no op computes on float32 data${kept.length ? ` (${kept.map((k) => `${k.op}: ${k.reason}`).join('; ')})` : ''}`,
    );
  }

  /** Why a node stays float32; '' when it has no float32 data to speak of; undefined when it goes float16. */
  function keepReason(node: Node): string | undefined {
    const op = node.opType;
    const hasFloat = node.inputs.some((v, i) => isF32(v) && position(node, i) === 'data') || node.outputs.some((v) => isF32(v));
    if (!hasFloat && !(op === 'Cast' && node.int('to') === 1)) return '';
    if (!isOnnxDomain(node.domain)) return `a ${node.domain} op`;
    if (node.subgraphs().length > 0) return 'has subgraphs';
    if (blocked.has(op) || (node.name && blocked.has(node.name))) return 'blocked (--fp16-block)';
    if (FP16_BLOCK_LIST[op]) return FP16_BLOCK_LIST[op];
    if ([...node.inputs, ...node.outputs].some((v) => v && dtypeOf(v) === undefined)) return 'a type is unknown';
    if (op === 'Cast') return node.int('to') === 1 ? undefined : '';
    if (op === 'Constant') return node.tensorAttr('value')?.dtype === 'float32' ? undefined : 'its value is not a float32 tensor';
    if (REDUCTIONS.has(op)) {
      const n = reducedCount(node);
      if (n === undefined) return 'sums an unknown number of elements';
      if (n > LARGE_REDUCTION) return `sums ${n} elements`;
    }
    // Float16 compute needs float data in: ops that make floats from other types stay float32.
    if (!node.inputs.some((v, i) => isF32(v) && position(node, i) === 'data')) return 'makes float32 from other types';
    return undefined;
  }

  // 2. Where each float32 value lives (its "home"), and what each reader wants.
  const want = (node: Node, i: number): Half | 'any' => {
    if (node.graph !== g) return 'float32';
    const p = position(node, i);
    if (p === 'any') return 'any';
    return half.has(node) && p === 'data' ? 'float16' : 'float32';
  };
  const home = new Map<Value, Half>();
  for (const v of g.inputs) if (isF32(v) && !v.initializer) home.set(v, keepIo ? 'float32' : 'float16');
  for (const v of g.initializers) {
    if (!isF32(v) || v.isGraphInput) continue;
    home.set(v, v.uses.some((u) => want(u.node, u.index) === 'float16') ? 'float16' : 'float32');
  }
  for (const node of g.nodes) {
    node.outputs.forEach((o, i) => {
      if (!isF32(o)) return;
      home.set(o, half.has(node) && !FLOAT32_OUTPUTS[node.opType]?.includes(i) ? 'float16' : 'float32');
    });
  }

  // 3. A Cast wherever a reader wants the other type (one per value and type), and at the outputs.
  const edit = new GraphEditor(model);
  let casts = 0;
  const castOf = new Map<string, Value>();
  const cast = (v: Value, to: Half): Value => {
    const key = `${v.name}\u0000${to}`;
    let c = castOf.get(key);
    if (!c) {
      const shape = v.type?.kind === 'tensor' ? v.type.shape : undefined;
      c = edit.node(
        'Cast',
        [v],
        `${v.name}_${to === 'float16' ? 'fp16' : 'fp32'}`,
        { dtype: to, shape },
        { attrs: { to: to === 'float16' ? 10 : 1 } },
      );
      castOf.set(key, c);
      casts++;
    }
    return c;
  };
  for (const [v, h] of home) {
    for (const u of [...v.uses]) {
      const w = want(u.node, u.index);
      if (w !== 'any' && w !== h) u.node.setInput(u.index, cast(v, w));
    }
  }
  let clamped = 0;
  for (const [v, h] of home) {
    if (h !== 'float16') continue;
    if (v.initializer) {
      const r = toFloat16(v.initializer);
      clamped += r.clamped;
      g.makeInitializer(v, r.tensor);
    } else if (v.type?.kind === 'tensor') {
      v.type = { ...v.type, dtype: 'float16' };
    }
  }
  for (const node of half) {
    if (node.opType === 'Cast') node.attrs.set('to', { type: 'int', value: 10 });
    if (node.opType === 'Constant') {
      const r = toFloat16(node.tensorAttr('value') as Tensor);
      clamped += r.clamped;
      node.attrs.set('value', { type: 'tensor', value: r.tensor });
    }
  }
  g.outputs.forEach((v, i) => {
    if (home.get(v) !== 'float16') return;
    if (!keepIo) return;
    // The output keeps its name and type: the float16 value is renamed, a Cast takes the name.
    const name = v.name;
    g.renameValue(v, g.freshName(`${name}_fp16`));
    const shape = v.type?.kind === 'tensor' ? v.type.shape : undefined;
    const out = edit.node('Cast', [v], name, { dtype: 'float32', shape }, { attrs: { to: 1 } });
    casts++;
    g.outputs[i] = out;
  });
  if (!keepIo) {
    for (const v of g.inputs) if (home.get(v) === 'float16' && v.type?.kind === 'tensor') v.type = { ...v.type, dtype: 'float16' };
  }
  const notes = [`${casts} Cast nodes added${keepIo ? '; graph inputs and outputs stay float32' : ''}`];
  if (clamped > 0) notes.push(`${clamped} initializer values beyond ±65504 clamped`);
  const t1 = performance.now();
  return finish(model, {
    scheme: 'fp16',
    activations: 'float16',
    weights: 'float16',
    quantized: countOps(half),
    float: kept,
    notes,
    weightBytesBefore,
    nodesBefore,
    t0,
    tOptimized,
    tCalibrated: t1,
  });
}
