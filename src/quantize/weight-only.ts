/**
 * Weight-only quantization: the weights shrink, the activations stay float32.
 *
 * weight-int8 — symmetric int8, one scale per output channel (per tensor with perChannel false):
 *   q = clamp(round(w / s), −127, 127), s = max|w| / 127 (params.ts, the static schemes' rule),
 *   behind a DequantizeLinear (zero point 0, its default for int8).
 *
 * weight-int4 — 4-bit codes per block of `blockSize` (default 32) consecutive input features,
 *   asymmetric: each block's range [min(w, 0), max(w, 0)] on the 16 levels of uint4,
 *   s = (hi − lo)/15, zero point z = round(−lo/s), q = clamp(round(w/s) + z, 0, 15),
 *   w ≈ (q − z)·s. Two layouts:
 *   - com.microsoft.MatMulNBits (onnxruntime's fused kernel, which dequantizes a block at a time
 *     inside the product) for MatMul with a 2-D weight [K, N], and for Gemm that is a MatMul plus
 *     bias (alpha = beta = 1, transA = 0, a bias of N values, which becomes MatMulNBits' bias).
 *     Its schema (onnxruntime's contrib ops): attributes K, N, bits, block_size (a power of two,
 *     ≥ 16), accuracy_level (0: A stays float32); inputs A [.., K]; B uint8 [N, k_blocks,
 *     block_size·bits/8], row n holding output feature n's codes along K, two per byte, the first
 *     in the low nibble; scales [N, k_blocks] (A's type); zero_points packed like B,
 *     uint8 [N, ceil(k_blocks·bits/8)] (default 2^(bits−1)); g_idx (deprecated, empty); bias [N].
 *     The last block is padded with the zero point's code (a weight of exactly 0).
 *   - a blocked DequantizeLinear (opset 21: block_size attribute, uint4 codes and zero points)
 *     for Conv, ConvTranspose and the MatMul/Gemm MatMulNBits does not take. A 2-D weight is
 *     blocked along the axis the op sums over; a Conv weight [O, C, kh, kw] is read as
 *     [O, C·kh·kw] — blocks of consecutive (c, kh, kw) of one output channel, so a depthwise
 *     3×3 kernel is one block — and a Reshape restores its shape after the dequantization.
 *   The model is raised to opset 21 for the DequantizeLinear; when it cannot be, those nodes stay
 *   float and the report says why (MatMulNBits needs no particular opset).
 *
 * onnxruntime does not constant-fold DequantizeLinear (it keeps Q/DQ for its int8 fusions), so the
 * weights of a DQ layout are dequantized on every run: files shrink, inference does a little more.
 */
import { badInput } from '../errors.js';
import { modelStats } from '../eval/stats.js';
import { isOnnxDomain, type Model, type Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { constantValue } from '../passes/match.js';
import { quantizeWeights, roundHalfEven } from './params.js';
import type { QuantizeOptions, QuantizeReport } from './schemes.js';
import { prepareForQuantization } from './static.js';
import {
  countNodes,
  countOps,
  type FloatEntry,
  findWeightTargets,
  finish,
  GraphEditor,
  nothingToQuantize,
  pack4,
  raiseOpset,
  type WeightTarget,
} from './weights.js';

export const DEFAULT_BLOCK_SIZE = 32;

/** A block size MatMulNBits takes: a power of two, at least 16. */
export function checkBlockSize(n: number): number {
  if (!Number.isInteger(n) || n < 16 || (n & (n - 1)) !== 0 || n > 1 << 16) {
    throw badInput(`--block-size ${n}: expected a power of two from 16 up (16, 32, 64, 128, …)`);
  }
  return n;
}

export interface Int4Block {
  scale: number;
  zeroPoint: number;
}

/** Asymmetric 4-bit grid of one block's values. An all-zero block gets scale 1, zero point 0. */
export function int4Block(values: ArrayLike<number>, from: number, to: number, stride = 1): Int4Block {
  let lo = 0;
  let hi = 0;
  for (let i = from; i < to; i += stride) {
    const x = values[i];
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  if (!(hi > lo)) return { scale: 1, zeroPoint: 0 };
  const scale = Math.fround((hi - lo) / 15);
  return { scale, zeroPoint: Math.min(15, Math.max(0, roundHalfEven(-lo / scale))) };
}

export function int4Code(x: number, b: Int4Block): number {
  return Math.min(15, Math.max(0, roundHalfEven(x / b.scale) + b.zeroPoint));
}

/**
 * Block-wise uint4 quantization of a row-major [rows, cols] matrix along its columns (blocks
 * run along a row): codes [rows, cols], scales and zero points [rows, ceil(cols / blockSize)].
 */
export function quantizeRowBlocks(
  data: Float32Array,
  rows: number,
  cols: number,
  blockSize: number,
): { codes: Uint8Array; scales: Float32Array; zeroPoints: Uint8Array } {
  const blocks = Math.ceil(cols / blockSize);
  const codes = new Uint8Array(rows * cols);
  const scales = new Float32Array(rows * blocks);
  const zeroPoints = new Uint8Array(rows * blocks);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocks; b++) {
      const from = r * cols + b * blockSize;
      const to = r * cols + Math.min(cols, (b + 1) * blockSize);
      const g = int4Block(data, from, to);
      scales[r * blocks + b] = g.scale;
      zeroPoints[r * blocks + b] = g.zeroPoint;
      for (let i = from; i < to; i++) codes[i] = int4Code(data[i], g);
    }
  }
  return { codes, scales, zeroPoints };
}

/** The same along the rows of a [rows, cols] matrix (blocks run down a column): results laid out as for its transpose. */
function quantizeColumnBlocks(data: Float32Array, rows: number, cols: number, blockSize: number): ReturnType<typeof quantizeRowBlocks> {
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = data[r * cols + c];
  return quantizeRowBlocks(t, cols, rows, blockSize);
}

/** MatMulNBits' B: [N, k_blocks, blockSize/2] bytes from codes [N, K], padding the last block with each block's zero point. */
export function packNBits(codes: Uint8Array, zeroPoints: Uint8Array, n: number, k: number, blockSize: number): Uint8Array {
  const blocks = Math.ceil(k / blockSize);
  const padded = new Uint8Array(n * blocks * blockSize);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < blocks; b++) {
      const zp = zeroPoints[r * blocks + b];
      for (let i = 0; i < blockSize; i++) {
        const kk = b * blockSize + i;
        padded[(r * blocks + b) * blockSize + i] = kk < k ? codes[r * k + kk] : zp;
      }
    }
  }
  return pack4(padded);
}

/** MatMulNBits' zero points: [N, ceil(k_blocks/2)] bytes, two blocks' zero points per byte, the first in the low nibble. */
export function packNBitsZeroPoints(zeroPoints: Uint8Array, n: number, blocks: number): Uint8Array {
  const width = Math.ceil(blocks / 2);
  const out = new Uint8Array(n * width);
  for (let r = 0; r < n; r++) {
    for (let b = 0; b < blocks; b++) out[r * width + (b >> 1)] |= (zeroPoints[r * blocks + b] & 0xf) << (b & 1 ? 4 : 0);
  }
  return out;
}

/** Why a MatMul/Gemm cannot become MatMulNBits, or its bias (Gemm's C) when it can. */
function nbitsFit(t: WeightTarget): { bias: Value | undefined } | string {
  const { node, tensor } = t;
  if (tensor.rank !== 2) return `its weight has rank ${tensor.rank}`;
  const a = node.input(0);
  const aShape = a?.type?.kind === 'tensor' ? a.type.shape : undefined;
  if (!aShape || aShape.length < 2) return 'its input rank is not known to be at least 2';
  if (node.opType === 'MatMul') return { bias: undefined };
  if (node.int('transA', 0) !== 0 || node.float('alpha', 1) !== 1) return 'transA or alpha';
  if (aShape.length !== 2) return 'its input is not 2-D';
  const c = node.input(2);
  if (!c) return { bias: undefined };
  const n = node.int('transB', 0) ? tensor.dims[0] : tensor.dims[1];
  const bias = constantValue(c);
  if (
    node.float('beta', 1) !== 1 ||
    !bias ||
    bias.dtype !== 'float32' ||
    bias.size !== n ||
    (bias.rank === 2 && bias.dims[0] !== 1) ||
    bias.rank > 2
  ) {
    return 'its bias is not a constant of N values';
  }
  return { bias: c };
}

export async function weightOnlyQuantize(model: Model, options: QuantizeOptions, bits: 8 | 4): Promise<QuantizeReport> {
  const scheme = `weight-int${bits}`;
  const blockSize = checkBlockSize(options.blockSize ?? DEFAULT_BLOCK_SIZE);
  const t0 = performance.now();
  const weightBytesBefore = modelStats(model).weightBytes;
  const nodesBefore = countNodes(model);
  prepareForQuantization(model, options.optimize !== false);
  const found = findWeightTargets(model, options.exclude);
  if (found.targets.length === 0) throw nothingToQuantize(scheme, found.float);
  const notes: string[] = [];
  let opset21: string | undefined;
  if (bits === 4) opset21 = raiseOpset(model, 21);
  const { targets, float } = findWeightTargets(model, options.exclude);
  const edit = new GraphEditor(model);
  const tOptimized = performance.now();
  const rewritten =
    bits === 8 ? int8Weights(edit, targets, options.perChannel ?? true) : int4Weights(edit, targets, blockSize, opset21, float);
  if (bits === 4) {
    const nbits = rewritten.filter((n) => n.opType === 'MatMulNBits').length;
    if (nbits > 0) notes.push(`${nbits} MatMul/Gemm became com.microsoft.MatMulNBits (onnxruntime only)`);
    if (opset21) notes.push(`Conv/ConvTranspose kept float: ${opset21}`);
  }
  if (rewritten.length === 0) throw nothingToQuantize(scheme, float);
  const t1 = performance.now();
  return finish(model, {
    scheme,
    activations: 'float32',
    weights: bits === 8 ? 'int8 (symmetric)' : `uint4 blocks of ${blockSize} (asymmetric)`,
    ...(bits === 8 ? { perChannel: options.perChannel ?? true } : {}),
    quantized: countOps(rewritten.map((n) => ({ opType: n.original }))),
    float,
    notes,
    weightBytesBefore,
    nodesBefore,
    t0,
    tOptimized,
    tCalibrated: t1,
  });
}

interface Rewritten {
  /** The op type the node had. */
  original: string;
  /** What runs now (MatMulNBits, or the original op behind a DequantizeLinear). */
  opType: string;
}

function int8Weights(edit: GraphEditor, targets: WeightTarget[], perChannel: boolean): Rewritten[] {
  const done = new Map<Value, Value>();
  for (const t of targets) {
    let dq = done.get(t.value);
    if (!dq) {
      const dims = [...t.tensor.dims];
      const axis = perChannel ? t.channelAxis : undefined;
      const { values, scales } = quantizeWeights(t.tensor.toFloat32(), dims, axis);
      const q = edit.initializer(`${t.value.name}_quantized`, Tensor.from('int8', dims, values));
      const s = edit.initializer(`${t.value.name}_scale`, Tensor.from('float32', axis === undefined ? [] : [scales.length], scales));
      dq = edit.node(
        'DequantizeLinear',
        [q, s],
        `${t.value.name}_dequantized`,
        { dtype: 'float32', shape: dims },
        axis === undefined ? {} : { attrs: { axis } },
      );
      done.set(t.value, dq);
    }
    t.node.setInput(1, dq);
  }
  return targets.map((t) => ({ original: t.node.opType, opType: t.node.opType }));
}

function int4Weights(
  edit: GraphEditor,
  targets: WeightTarget[],
  blockSize: number,
  noOpset21: string | undefined,
  float: FloatEntry[],
): Rewritten[] {
  const out: Rewritten[] = [];
  const done = new Map<Value, Value>();
  for (const t of targets) {
    const { node } = t;
    const original = node.opType;
    if (isOnnxDomain(node.domain) && (original === 'MatMul' || original === 'Gemm')) {
      const fit = nbitsFit(t);
      if (typeof fit !== 'string') {
        toMatMulNBits(edit, t, fit.bias, blockSize);
        out.push({ original, opType: 'MatMulNBits' });
        continue;
      }
    }
    if (noOpset21) {
      float.push({
        node: node.name || node.outputs[0]?.name || '?',
        op: original,
        reason: 'blocked 4-bit DequantizeLinear needs opset 21',
      });
      continue;
    }
    let w = done.get(t.value);
    if (!w) {
      w = blockedDequantize(edit, t, blockSize);
      done.set(t.value, w);
    }
    node.setInput(1, w);
    out.push({ original, opType: original });
  }
  return out;
}

/** Codes, scales and zero points of a weight behind a blocked uint4 DequantizeLinear (and a Reshape for rank > 2). */
function blockedDequantize(edit: GraphEditor, t: WeightTarget, blockSize: number): Value {
  const dims = [...t.tensor.dims];
  const data = t.tensor.toFloat32();
  const base = t.value.name;
  let qDims: number[];
  let axis: number;
  let q: ReturnType<typeof quantizeRowBlocks>;
  if (dims.length === 2 && t.reductionAxis === 0) {
    // [K, N] blocked along K: quantize the transpose's rows, then lay codes back out as [K, N].
    const [k, n] = dims;
    const tq = quantizeColumnBlocks(data, k, n, blockSize);
    const codes = new Uint8Array(k * n);
    for (let c = 0; c < n; c++) for (let r = 0; r < k; r++) codes[r * n + c] = tq.codes[c * k + r];
    const blocks = Math.ceil(k / blockSize);
    const scales = new Float32Array(blocks * n);
    const zeroPoints = new Uint8Array(blocks * n);
    for (let c = 0; c < n; c++) {
      for (let b = 0; b < blocks; b++) {
        scales[b * n + c] = tq.scales[c * blocks + b];
        zeroPoints[b * n + c] = tq.zeroPoints[c * blocks + b];
      }
    }
    q = { codes, scales, zeroPoints };
    qDims = [k, n];
    axis = 0;
  } else {
    const rows = dims[0];
    const cols = data.length / Math.max(1, rows);
    q = quantizeRowBlocks(data, rows, cols, blockSize);
    qDims = [rows, cols];
    axis = 1;
  }
  const paramDims = qDims.map((d, i) => (i === axis ? Math.ceil(d / blockSize) : d));
  const inputs = [
    edit.initializer(`${base}_int4`, Tensor.fromBytes('uint4', qDims, pack4(q.codes))),
    edit.initializer(`${base}_int4_scale`, Tensor.from('float32', paramDims, q.scales)),
    edit.initializer(`${base}_int4_zero_point`, Tensor.fromBytes('uint4', paramDims, pack4(q.zeroPoints))),
  ];
  const dq = edit.node(
    'DequantizeLinear',
    inputs,
    `${base}_dequantized`,
    { dtype: 'float32', shape: qDims },
    { attrs: { axis, block_size: blockSize } },
  );
  if (qDims.length === dims.length) return dq;
  const shape = edit.initializer(`${base}_shape`, Tensor.from('int64', [dims.length], dims));
  return edit.node('Reshape', [dq, shape], `${base}_reshaped`, { dtype: 'float32', shape: dims });
}

/** Turns a MatMul (or Gemm) into com.microsoft.MatMulNBits in place: same node, same output. */
function toMatMulNBits(edit: GraphEditor, t: WeightTarget, bias: Value | undefined, blockSize: number): void {
  const { node, tensor } = t;
  const data = tensor.toFloat32();
  // Rows of output features along K: W is [K, N] unless it is a Gemm's transposed B, [N, K].
  const transposed = node.opType === 'Gemm' && node.int('transB', 0) === 1;
  const [k, n] = transposed ? [tensor.dims[1], tensor.dims[0]] : [tensor.dims[0], tensor.dims[1]];
  const q = transposed ? quantizeRowBlocks(data, n, k, blockSize) : quantizeColumnBlocks(data, k, n, blockSize);
  const blocks = Math.ceil(k / blockSize);
  const base = t.value.name;
  const B = edit.initializer(
    `${base}_nbits`,
    Tensor.from('uint8', [n, blocks, blockSize / 2], packNBits(q.codes, q.zeroPoints, n, k, blockSize)),
  );
  const scales = edit.initializer(`${base}_nbits_scale`, Tensor.from('float32', [n, blocks], q.scales));
  const zp = edit.initializer(
    `${base}_nbits_zero_point`,
    Tensor.from('uint8', [n, Math.ceil(blocks / 2)], packNBitsZeroPoints(q.zeroPoints, n, blocks)),
  );
  let b: Value | null = null;
  if (bias) {
    const bt = constantValue(bias) as Tensor;
    b = bt.rank === 1 ? bias : edit.initializer(`${bias.name}_flat`, bt.reshape([n]));
  }
  const a = node.input(0) as Value;
  node.truncateInputs(0);
  for (const v of [a, B, scales, zp, null, b]) node.addInput(v);
  if (!b) node.truncateInputs(4);
  node.opType = 'MatMulNBits';
  node.domain = 'com.microsoft';
  node.attrs.clear();
  for (const [key, value] of Object.entries({ K: k, N: n, bits: 4, block_size: blockSize, accuracy_level: 0 })) {
    node.attrs.set(key, { type: 'int', value });
  }
  if (edit.model.opset('com.microsoft') === undefined) edit.model.opsetImports.set('com.microsoft', 1);
}
