/**
 * Linear quantization: QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear. Parameters
 * are per tensor (opset 10), per axis (13) or per block along one axis (21); opset 19 added the
 * float8 types and 21 the 16- and 4-bit integers. Spec: https://onnx.ai/onnx/operators/
 */
import { type DType, dtypeCode, dtypeFromCode, isFloat, isInteger, valueRange } from '../ir/dtype.js';
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from '../ir/float16.js';
import type { Value } from '../ir/graph.js';
import { shapeSize, Tensor } from '../ir/tensor.js';
import type { Shape } from '../ir/types.js';
import { fromOutput0, withGradients } from './grad.js';
import type { GradRule, InferContext, KernelContext, OpSchema } from './schema.js';
import { axisOf, f32, fromNumbers, numbers, roundHalfEven } from './util.js';

/** A float64 result rounded to the precision the reference computes it in (the input's float type). */
function roundTo(dtype: DType, x: number): number {
  switch (dtype) {
    case 'float32':
      return f32(x);
    case 'float16':
      return halfToFloat(floatToHalf(x));
    case 'bfloat16':
      return bfloat16ToFloat(floatToBfloat16(x));
    default:
      return x;
  }
}

// ---------------------------------------------------------------- float8 and 4-bit storage

interface Float8Format {
  exponentBits: number;
  mantissaBits: number;
  bias: number;
  /** "fnuz" formats: one NaN (0x80), no infinities, no negative zero. */
  fnuz: boolean;
  /** e5m2 is IEEE-like: infinities and several NaNs at the top exponent. */
  ieee: boolean;
}

const FLOAT8: Partial<Record<DType, Float8Format>> = {
  float8e4m3fn: { exponentBits: 4, mantissaBits: 3, bias: 7, fnuz: false, ieee: false },
  float8e4m3fnuz: { exponentBits: 4, mantissaBits: 3, bias: 8, fnuz: true, ieee: false },
  float8e5m2: { exponentBits: 5, mantissaBits: 2, bias: 15, fnuz: false, ieee: true },
  float8e5m2fnuz: { exponentBits: 5, mantissaBits: 2, bias: 16, fnuz: true, ieee: false },
};

/** The value of a float8 bit pattern. */
function decodeFloat8(f: Float8Format, bits: number): number {
  if (f.fnuz && bits === 0x80) return Number.NaN;
  const sign = bits & 0x80 ? -1 : 1;
  const mMask = (1 << f.mantissaBits) - 1;
  const eMax = (1 << f.exponentBits) - 1;
  const e = (bits >> f.mantissaBits) & eMax;
  const m = bits & mMask;
  if (f.ieee && e === eMax) return m === 0 ? sign * Infinity : Number.NaN;
  // e4m3fn keeps the top exponent for numbers except S.1111.111, its NaN.
  if (!f.fnuz && !f.ieee && e === eMax && m === mMask) return Number.NaN;
  const mag = e === 0 ? (m / (mMask + 1)) * 2 ** (1 - f.bias) : (1 + m / (mMask + 1)) * 2 ** (e - f.bias);
  return sign * mag;
}

/**
 * Non-negative finite values of a format by code (codes ascend with value), plus one virtual
 * code past the largest finite value: rounding to it means overflow.
 */
function positiveTable(f: Float8Format): number[] {
  const table: number[] = [];
  for (let code = 0; code < 0x80; code++) {
    const v = decodeFloat8(f, code);
    if (!Number.isFinite(v)) break;
    table.push(v);
  }
  const top = table[table.length - 1];
  table.push(top + 2 ** (Math.floor(Math.log2(top)) - f.mantissaBits));
  return table;
}

const TABLES = new Map<Float8Format, number[]>();

/** Encodes x to float8 rounding to nearest even, saturating or not as the Cast table says. */
function encodeFloat8(f: Float8Format, x: number, saturate: boolean): number {
  const nan = f.fnuz ? 0x80 : 0x7f;
  if (Number.isNaN(x)) return nan;
  let table = TABLES.get(f);
  if (!table) {
    table = positiveTable(f);
    TABLES.set(f, table);
  }
  const maxCode = table.length - 2;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.abs(x);
  let code: number;
  if (a === Infinity) {
    code = table.length - 1;
  } else {
    // Largest code whose value is <= a, then round to the nearer neighbour (ties to even code).
    let lo = 0;
    let hi = table.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (table[mid] <= a) lo = mid;
      else hi = mid - 1;
    }
    code = lo;
    if (lo < table.length - 1) {
      const down = a - table[lo];
      const up = table[lo + 1] - a;
      if (up < down || (up === down && lo % 2 === 1)) code = lo + 1;
    }
  }
  if (code > maxCode) {
    // Out of range: saturate to the largest finite value, or become inf / NaN.
    if (saturate && !(a === Infinity && f.fnuz)) code = maxCode;
    else if (f.ieee) return sign | (((1 << f.exponentBits) - 1) << f.mantissaBits);
    else return f.fnuz ? nan : sign | nan;
  }
  // fnuz formats have no negative zero.
  if (code === 0 && f.fnuz) return 0;
  return sign | code;
}

/** Builds a tensor of an integer or float8 quantized type from (already saturated) values. */
function quantizedTensor(dtype: DType, dims: readonly number[], values: ArrayLike<number>, saturate: boolean): Tensor {
  const n = shapeSize(dims);
  const f8 = FLOAT8[dtype];
  if (f8) {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = encodeFloat8(f8, values[i], saturate);
    return Tensor.fromBytes(dtype, dims, out);
  }
  if (dtype === 'int4' || dtype === 'uint4') {
    // fromNumbers stores one element per byte; 4-bit tensors pack two, low nibble first.
    const out = new Uint8Array(Math.ceil(n / 2));
    for (let i = 0; i < n; i++) out[i >> 1] |= (values[i] & 0xf) << (i & 1 ? 4 : 0);
    return Tensor.fromBytes(dtype, dims, out);
  }
  return fromNumbers(dtype, dims, values);
}

/** Element values of a quantized tensor (float8 decoded here; numbers() cannot yet). */
function quantizedValues(t: Tensor): ArrayLike<number> {
  const f8 = FLOAT8[t.dtype];
  if (!f8) return numbers(t);
  const bytes = t.bytes;
  return Float64Array.from(bytes, (b) => decodeFloat8(f8, b));
}

// ---------------------------------------------------------------- parameter layout

/**
 * For each element of x, the index of its scale / zero point: one for the whole tensor, one per
 * slice along `axis` (a vector), or one per block of `blockSize` along `axis` (same rank as x).
 */
function paramIndex(ctx: KernelContext, x: Tensor, param: Tensor, axisAttr: number, blockSize: number): (i: number) => number {
  if (param.size === 1) return () => 0;
  const axis = axisOf(ctx, axisAttr, x.rank);
  const dim = x.dims[axis];
  const inner = shapeSize(x.dims.slice(axis + 1));
  if (blockSize <= 0) {
    if (param.rank !== 1 || param.size !== dim)
      return ctx.fail(`per-axis parameter [${param.dims}] does not match axis ${axis} of [${x.dims}]`);
    return (i) => Math.floor(i / inner) % dim;
  }
  const blocks = Math.ceil(dim / blockSize);
  const fits = param.rank === x.rank && param.dims.every((d, k) => (k === axis ? d === blocks : d === x.dims[k]));
  if (!fits) return ctx.fail(`blocked parameter [${param.dims}] does not match [${x.dims}] with block_size ${blockSize} on axis ${axis}`);
  return (i) => {
    const outer = Math.floor(i / (dim * inner));
    const a = Math.floor(i / inner) % dim;
    return (outer * blocks + Math.floor(a / blockSize)) * inner + (i % inner);
  };
}

function layout(ctx: KernelContext, x: Tensor, param: Tensor): (i: number) => number {
  const blockSize = ctx.opset >= 21 ? ctx.node.int('block_size', 0) : 0;
  return paramIndex(ctx, x, param, ctx.node.int('axis', 1), blockSize);
}

/** Checks a scale's shape against x where both are known: scalar, axis vector or blocks. */
function checkParamShape(ctx: InferContext, x: Shape | undefined, param: Shape | undefined): void {
  if (!x || !param || param.length === 0) return;
  const blockSize = ctx.opset >= 21 ? ctx.node.int('block_size', 0) : 0;
  if (blockSize > 0) {
    if (param.length !== x.length) ctx.fail(`blocked scale has rank ${param.length}, input has rank ${x.length}`);
    return;
  }
  if (param.length !== 1) ctx.fail(`scale must be a scalar or a vector, got rank ${param.length}`);
  const axis = axisOf(ctx, ctx.node.int('axis', 1), x.length);
  const n = param[0];
  const d = x[axis];
  if (typeof n === 'number' && typeof d === 'number' && n !== 1 && n !== d)
    ctx.fail(`scale has ${n} entries for axis ${axis} of size ${d}`);
}

// ---------------------------------------------------------------- the operators

/** QuantizeLinear's output type: the zero point's, else (opset 21) output_dtype, else uint8. */
function quantizedType(ctx: InferContext | KernelContext, zeroPoint: DType | undefined): DType {
  if (zeroPoint) return zeroPoint;
  const code = ctx.opset >= 21 ? ctx.node.int('output_dtype', 0) : 0;
  return (code !== 0 ? dtypeFromCode(code) : undefined) ?? 'uint8';
}

const quantizeLinear: OpSchema = {
  op: 'QuantizeLinear',
  attrs: { axis: 'int', saturate: 'int', block_size: 'int', output_dtype: 'int' },
  infer(ctx) {
    checkParamShape(ctx, ctx.shape(0), ctx.shape(1));
    const zp = ctx.hasInput(2) ? ctx.dtype(2) : undefined;
    ctx.output(0, quantizedType(ctx, zp), ctx.shape(0));
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const scale = ctx.input(1);
    const zp = ctx.optional(2);
    const dtype = quantizedType(ctx, zp?.dtype);
    const saturate = ctx.node.int('saturate', 1) !== 0;
    const xv = numbers(x);
    const sv = numbers(scale);
    const sAt = layout(ctx, x, scale);
    const out = new Float64Array(x.size);
    const range = isInteger(dtype) ? valueRange(dtype) : undefined;
    if (range) {
      const zv = zp ? numbers(zp) : undefined;
      const zAt = zp ? layout(ctx, x, zp) : () => 0;
      for (let i = 0; i < out.length; i++) {
        const q = roundHalfEven(roundTo(x.dtype, xv[i] / sv[sAt(i)])) + (zv ? zv[zAt(i)] : 0);
        out[i] = Math.min(range[1], Math.max(range[0], q));
      }
    } else if (FLOAT8[dtype]) {
      // Float8 zero points must be 0; the scaled value is rounded straight into the format.
      for (let i = 0; i < out.length; i++) out[i] = roundTo(x.dtype, xv[i] / sv[sAt(i)]);
    } else {
      return ctx.fail(`QuantizeLinear cannot produce ${dtype}`);
    }
    return [quantizedTensor(dtype, x.dims, out, saturate)];
  },
};

const dequantizeLinear: OpSchema = {
  op: 'DequantizeLinear',
  attrs: { axis: 'int', block_size: 'int' },
  infer(ctx) {
    checkParamShape(ctx, ctx.shape(0), ctx.shape(1));
    // Until opset 19 the output was always float32; since then it has the scale's type.
    const dtype = ctx.opset >= 19 ? (ctx.dtype(1) ?? 'float32') : 'float32';
    ctx.output(0, dtype, ctx.shape(0));
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const scale = ctx.input(1);
    const zp = ctx.optional(2);
    const dtype = ctx.opset >= 19 ? scale.dtype : 'float32';
    if (!isFloat(dtype)) return ctx.fail(`DequantizeLinear scale must be a float tensor, got ${dtype}`);
    const xv = quantizedValues(x);
    const sv = numbers(scale);
    const sAt = layout(ctx, x, scale);
    // Float8 inputs carry no zero point (it must be 0), so it is not read.
    const zv = zp && !FLOAT8[zp.dtype] ? numbers(zp) : undefined;
    const zAt = zp && zv ? layout(ctx, x, zp) : () => 0;
    const out = new Float64Array(x.size);
    for (let i = 0; i < out.length; i++) out[i] = (xv[i] - (zv ? zv[zAt(i)] : 0)) * sv[sAt(i)];
    return [fromNumbers(dtype, x.dims, out)];
  },
};

/**
 * DynamicQuantizeLinear: uint8 with scale and zero point from the data's range widened to
 * include 0, computed in float32 as the spec's formula is.
 */
const dynamicQuantizeLinear: OpSchema = {
  op: 'DynamicQuantizeLinear',
  infer(ctx) {
    ctx.output(0, 'uint8', ctx.shape(0));
    ctx.output(1, 'float32', []);
    ctx.output(2, 'uint8', []);
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const xv = numbers(x);
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < xv.length; i++) {
      lo = Math.min(lo, xv[i]);
      hi = Math.max(hi, xv[i]);
    }
    lo = f32(lo);
    hi = f32(hi);
    // An all-zero input has an empty range; scale 1 keeps the zero point and outputs at 0.
    const scale = hi === lo ? 1 : f32(f32(hi - lo) / 255);
    const zero = roundHalfEven(Math.min(255, Math.max(0, f32(0 - f32(lo / scale)))));
    const y = new Float64Array(xv.length);
    for (let i = 0; i < y.length; i++) y[i] = Math.min(255, Math.max(0, roundHalfEven(f32(xv[i] / scale)) + zero));
    return [fromNumbers('uint8', x.dims, y), fromNumbers('float32', [], [scale]), fromNumbers('uint8', [], [zero])];
  },
};

// ---------------------------------------------------------------- gradients

/**
 * Fake quantization (QuantizeLinear → DequantizeLinear) passes gradients straight through, except
 * where QuantizeLinear clips: dX = dY where qmin ≤ round(x/scale) + zero_point ≤ qmax, else 0
 * (PyTorch's fake_quantize rule). By convention the gradient of the integer tensor between the
 * two is that of the real value it encodes, so DequantizeLinear hands dY on unchanged and
 * QuantizeLinear applies the mask. Scale and zero point get no gradient.
 */
const quantizeGrad: GradRule = fromOutput0((c, dq) => {
  if (!c.needs(0)) return;
  if (c.needs(1) || c.needs(2)) c.fail('gradients with respect to the scale and zero point are not supported');
  if (c.node.int('block_size', 0) > 0) c.fail('the gradient of blocked quantization is not supported');
  const x = c.input(0);
  const t = c.dtype(x);
  const [qmin, qmax] = valueRange(c.dtype(c.output(0)));
  // Float8 outputs saturate at the format's range rather than at integers: no mask.
  if (!Number.isFinite(qmin)) return c.setGrad(0, dq);
  const rank = c.shape(x).length;
  const scale = c.input(1);
  const sShape = c.shape(scale);
  const perAxis = sShape.length === 1 && sShape[0] !== 1;
  const axis = perAxis ? axisOf(c, c.node.int('axis', 1), rank) : rank - 1;
  // A per-axis parameter [d] broadcasts over x as [d, 1, …] (one 1 per axis after `axis`).
  const along = (v: Value): Value =>
    perAxis && axis < rank - 1 ? c.op('Reshape', [v, c.ints([-1, ...new Array<number>(rank - axis - 1).fill(1)])]) : v;
  const scaleT = c.dtype(scale) === t ? scale : c.op('Cast', [scale], { to: dtypeCode(t) });
  const r = c.op('Round', [c.op('Div', [x, along(scaleT)])]);
  const zp = c.optionalInput(2);
  const zpConst = c.constant(zp);
  let lo: Value;
  let hi: Value;
  if (!zp || zpConst) {
    const z = zpConst ? Array.from(numbers(zpConst)) : [0];
    const dims = zpConst ? [...zpConst.dims] : [];
    lo = along(
      c.tensor(
        fromNumbers(
          t,
          dims,
          z.map((v) => qmin - v),
        ),
        'qmin',
      ),
    );
    hi = along(
      c.tensor(
        fromNumbers(
          t,
          dims,
          z.map((v) => qmax - v),
        ),
        'qmax',
      ),
    );
  } else {
    const z = along(c.op('Cast', [zp], { to: dtypeCode(t) }));
    lo = c.op('Sub', [c.scalar(qmin, t), z]);
    hi = c.op('Sub', [c.scalar(qmax, t), z]);
  }
  const inside = c.op('And', [c.op('GreaterOrEqual', [r, lo]), c.op('LessOrEqual', [r, hi])]);
  c.setGrad(0, c.op('Where', [inside, dq, c.scalar(0, t)]));
});

const dequantizeGrad: GradRule = fromOutput0((c, dy) => {
  if (c.needs(1) || c.needs(2)) c.fail('gradients with respect to the scale and zero point are not supported');
  if (c.needs(0)) c.setGrad(0, dy);
});

export const QUANT_OPS: OpSchema[] = withGradients([quantizeLinear, dequantizeLinear, dynamicQuantizeLinear], {
  QuantizeLinear: quantizeGrad,
  DequantizeLinear: dequantizeGrad,
});
