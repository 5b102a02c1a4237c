/**
 * Elementwise operators: unary math and activations, broadcasting binary arithmetic, comparison
 * and logic, variadic Sum/Mean/Max/Min, Where, Clip, Cast. Spec: https://onnx.ai/onnx/operators/
 */

import { dimAdd, dimDiv, dimMul, dimSub } from '../ir/dims.js';
import { type DType, dtypeFromCode, isFloat, isInteger } from '../ir/dtype.js';
import { Tensor } from '../ir/tensor.js';
import type { Dim } from '../ir/types.js';
import type { InferContext, KernelContext, OpSchema } from './schema.js';
import { broadcastInfer, fromNumbers, mapBroadcast, mapUnary, numbers, roundHalfEven, sameAsInput } from './util.js';

type Unary = (x: number, ctx: KernelContext) => number;

/** A unary op whose output has the input's type. */
function unary(op: string, fn: Unary, attrs?: OpSchema['attrs']): OpSchema {
  return {
    op,
    attrs,
    infer: sameAsInput,
    kernel: (ctx) => [mapUnary(ctx.input(0), (x) => fn(x, ctx))],
  };
}

/** Abramowitz–Stegun 7.1.26 is too coarse for 1e-3 checks near 0; use a series/continued fraction. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2) {
    // Maclaurin series: converges quickly for |x| < 2.
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // Continued fraction for erfc at larger |x|.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

const attr = (ctx: KernelContext, name: string, fallback: number): number => ctx.node.float(name, fallback);

const UNARY: OpSchema[] = [
  unary('Abs', Math.abs),
  unary('Neg', (x) => -x),
  unary('Ceil', Math.ceil),
  unary('Floor', Math.floor),
  unary('Round', roundHalfEven),
  unary('Sqrt', Math.sqrt),
  unary('Exp', Math.exp),
  unary('Log', Math.log),
  unary('Reciprocal', (x) => 1 / x),
  unary('Sin', Math.sin),
  unary('Cos', Math.cos),
  unary('Tan', Math.tan),
  unary('Asin', Math.asin),
  unary('Acos', Math.acos),
  unary('Atan', Math.atan),
  unary('Sinh', Math.sinh),
  unary('Cosh', Math.cosh),
  unary('Asinh', Math.asinh),
  unary('Acosh', Math.acosh),
  unary('Atanh', Math.atanh),
  unary('Erf', erf),
  unary('Sign', Math.sign),
  unary('Sigmoid', (x) => 1 / (1 + Math.exp(-x))),
  unary('Tanh', Math.tanh),
  unary('Relu', (x) => Math.max(x, 0)),
  unary('Softplus', (x) => (x > 30 ? x : Math.log1p(Math.exp(x)))),
  unary('Softsign', (x) => x / (1 + Math.abs(x))),
  unary('Mish', (x) => x * Math.tanh(x > 30 ? x : Math.log1p(Math.exp(x)))),
  unary('HardSwish', (x) => x * Math.max(0, Math.min(1, x / 6 + 0.5))),
  unary('HardSigmoid', (x, c) => Math.max(0, Math.min(1, attr(c, 'alpha', 0.2) * x + attr(c, 'beta', 0.5))), {
    alpha: 'float',
    beta: 'float',
  }),
  unary('LeakyRelu', (x, c) => (x >= 0 ? x : attr(c, 'alpha', 0.01) * x), { alpha: 'float' }),
  unary('Elu', (x, c) => (x >= 0 ? x : attr(c, 'alpha', 1) * (Math.exp(x) - 1)), { alpha: 'float' }),
  unary('Selu', (x, c) => attr(c, 'gamma', 1.0507010221481323) * (x > 0 ? x : attr(c, 'alpha', 1.6732631921768188) * (Math.exp(x) - 1)), {
    alpha: 'float',
    gamma: 'float',
  }),
  unary(
    'Celu',
    (x, c) => {
      const a = attr(c, 'alpha', 1);
      return Math.max(0, x) + Math.min(0, a * (Math.exp(x / a) - 1));
    },
    { alpha: 'float' },
  ),
  unary('ThresholdedRelu', (x, c) => (x > attr(c, 'alpha', 1) ? x : 0), { alpha: 'float' }),
  unary(
    'Shrink',
    (x, c) => {
      const l = attr(c, 'lambd', 0.5);
      const b = attr(c, 'bias', 0);
      return x < -l ? x + b : x > l ? x - b : 0;
    },
    { lambd: 'float', bias: 'float' },
  ),
  unary(
    'Gelu',
    (x, c) => {
      if (c.node.str('approximate', 'none') === 'tanh') return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
    },
    { approximate: 'string' },
  ),
  unary('Not', (x) => (x ? 0 : 1)),
  unary('BitwiseNot', (x) => ~x),
  {
    op: 'IsNaN',
    infer: (ctx) => ctx.output(0, 'bool', ctx.shape(0)),
    kernel: (ctx) => [mapUnary(ctx.input(0), (x) => (Number.isNaN(x) ? 1 : 0), 'bool')],
  },
  {
    op: 'IsInf',
    attrs: { detect_negative: 'int', detect_positive: 'int' },
    infer: (ctx) => ctx.output(0, 'bool', ctx.shape(0)),
    kernel: (ctx) => {
      const neg = ctx.node.int('detect_negative', 1) !== 0;
      const pos = ctx.node.int('detect_positive', 1) !== 0;
      return [mapUnary(ctx.input(0), (x) => ((x === Infinity && pos) || (x === -Infinity && neg) ? 1 : 0), 'bool')];
    },
  },
];

type Binary = (a: number, b: number, dtype: DType, ctx: KernelContext) => number;

/** Arithmetic on shape values, so Shape(x)[0] * 3 stays `3*N`. */
const SYMBOLIC_ARITH: Record<string, (a: Dim, b: Dim) => Dim> = { Add: dimAdd, Sub: dimSub, Mul: dimMul, Div: dimDiv };

function propagateSymbolic(ctx: InferContext): void {
  const f = SYMBOLIC_ARITH[ctx.node.opType];
  const a = ctx.symbolic(0);
  const b = ctx.symbolic(1);
  if (!f || !a || !b || (a.length !== b.length && a.length !== 1 && b.length !== 1)) return;
  const n = Math.max(a.length, b.length);
  ctx.outputSymbolic(
    0,
    Array.from({ length: n }, (_, i) => f(a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i])),
  );
}

/** A broadcasting op over all inputs, output dtype from `outDtype` (default: input 0's). */
function broadcasting(op: string, fn: Binary, outDtype?: DType, attrs?: OpSchema['attrs']): OpSchema {
  return {
    op,
    attrs,
    infer: (ctx) => {
      broadcastInfer(ctx, outDtype);
      propagateSymbolic(ctx);
    },
    kernel: (ctx) => {
      const a = ctx.input(0);
      const b = ctx.input(1);
      return [mapBroadcast(ctx, [a, b], outDtype ?? a.dtype, (x, y) => fn(x, y, a.dtype, ctx))];
    },
  };
}

function divide(a: number, b: number, dtype: DType): number {
  if (isInteger(dtype)) return b === 0 ? 0 : Math.trunc(a / b);
  return a / b;
}

function mod(a: number, b: number, _d: DType, ctx: KernelContext): number {
  if (ctx.node.int('fmod', 0) === 1) return a % b;
  if (b === 0) return isFloat(_d) ? Number.NaN : 0;
  const r = a % b;
  return r !== 0 && Math.sign(r) !== Math.sign(b) ? r + b : r;
}

const BINARY: OpSchema[] = [
  broadcasting('Add', (a, b) => a + b),
  broadcasting('Sub', (a, b) => a - b),
  broadcasting('Mul', (a, b) => a * b),
  broadcasting('Div', divide),
  broadcasting('Pow', (a, b) => a ** b),
  broadcasting('Mod', mod, undefined, { fmod: 'int' }),
  broadcasting(
    'BitShift',
    (a, b, d, c) => {
      const bits = d === 'uint64' ? 64 : d === 'uint32' ? 32 : d === 'uint16' ? 16 : 8;
      if (b >= bits) return 0;
      return c.node.str('direction') === 'LEFT' ? (a * 2 ** b) % 2 ** bits : Math.floor(a / 2 ** b);
    },
    undefined,
    { direction: 'string' },
  ),
  broadcasting('BitwiseAnd', (a, b) => a & b),
  broadcasting('BitwiseOr', (a, b) => a | b),
  broadcasting('BitwiseXor', (a, b) => a ^ b),
  broadcasting('And', (a, b) => (a && b ? 1 : 0), 'bool'),
  broadcasting('Or', (a, b) => (a || b ? 1 : 0), 'bool'),
  broadcasting('Xor', (a, b) => (!a !== !b ? 1 : 0), 'bool'),
  broadcasting('Equal', (a, b) => (a === b ? 1 : 0), 'bool'),
  broadcasting('Less', (a, b) => (a < b ? 1 : 0), 'bool'),
  broadcasting('LessOrEqual', (a, b) => (a <= b ? 1 : 0), 'bool'),
  broadcasting('Greater', (a, b) => (a > b ? 1 : 0), 'bool'),
  broadcasting('GreaterOrEqual', (a, b) => (a >= b ? 1 : 0), 'bool'),
  {
    // Slope broadcasts to X (unidirectionally); the output has X's shape.
    op: 'PRelu',
    infer: (ctx) => ctx.output(0, ctx.dtype(0), ctx.shape(0)),
    kernel: (ctx) => [mapBroadcast(ctx, [ctx.input(0), ctx.input(1)], ctx.input(0).dtype, (x, s) => (x < 0 ? s * x : x))],
  },
];

/** Sum/Mean/Max/Min over any number of broadcasting inputs. */
function variadic(op: string, fold: (xs: number[]) => number): OpSchema {
  return {
    op,
    infer: (ctx) => broadcastInfer(ctx),
    kernel: (ctx) => {
      const inputs: Tensor[] = [];
      for (let i = 0; i < ctx.numInputs; i++) inputs.push(ctx.input(i));
      return [mapBroadcast(ctx, inputs, inputs[0].dtype, (...xs) => fold(xs))];
    },
  };
}

const nanAware = (pick: (a: number, b: number) => number) => (xs: number[]) =>
  xs.reduce((a, b) => (Number.isNaN(a) || Number.isNaN(b) ? Number.NaN : pick(a, b)));

const VARIADIC: OpSchema[] = [
  variadic('Sum', (xs) => xs.reduce((a, b) => a + b, 0)),
  variadic('Mean', (xs) => xs.reduce((a, b) => a + b, 0) / xs.length),
  variadic('Max', nanAware(Math.max)),
  variadic('Min', nanAware(Math.min)),
];

function castTarget(ctx: InferContext | KernelContext): DType | undefined {
  if (ctx.node.opType === 'CastLike') {
    return 'dtype' in ctx ? ctx.dtype(1) : ctx.input(1).dtype;
  }
  const code = ctx.node.int('to');
  return code === undefined ? undefined : dtypeFromCode(code);
}

/** Shortest decimal that reads back as the same float32 (as numpy prints it). */
function floatToString(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'INF' : '-INF';
  for (let p = 1; p <= 17; p++) {
    const s = x.toPrecision(p);
    if (Math.fround(Number(s)) === x) return String(Number(s));
  }
  return String(x);
}

function stringToNumber(s: string): number {
  const t = s.trim().toLowerCase();
  if (t === 'inf' || t === '+inf' || t === 'infinity' || t === '+infinity') return Infinity;
  if (t === '-inf' || t === '-infinity') return -Infinity;
  return Number(t);
}

function castKernel(ctx: KernelContext): Tensor[] {
  const to = castTarget(ctx);
  if (!to) return ctx.fail('Cast has no valid "to" type');
  return [castTensor(ctx.input(0), to)];
}

export function castTensor(x: Tensor, to: DType): Tensor {
  if (to === x.dtype) return x;
  if (to === 'string') {
    const fmt = isFloat(x.dtype) ? floatToString : (v: number) => String(v);
    return Tensor.fromStrings(x.dims, x.toNumbers().map(fmt));
  }
  if (x.dtype === 'string') return castTensor(fromNumbers('float64', x.dims, x.strings.map(stringToNumber)), to);
  if (isFloat(to) || to === 'bool') return mapUnary(x, (v) => v, to);
  // Float → integer truncates toward zero (NaN → 0); integer storage then wraps as C casts do.
  return mapUnary(x, (v) => (Number.isNaN(v) ? 0 : Math.trunc(v)), to);
}

const OTHER: OpSchema[] = [
  {
    op: 'Where',
    infer: (ctx) => {
      broadcastInfer(ctx, ctx.dtype(1));
    },
    kernel: (ctx) => {
      const x = ctx.input(1);
      return [mapBroadcast(ctx, [ctx.input(0), x, ctx.input(2)], x.dtype, (c, a, b) => (c ? a : b))];
    },
  },
  {
    op: 'Clip',
    attrs: { min: 'float', max: 'float' },
    infer: sameAsInput,
    kernel: (ctx) => {
      const x = ctx.input(0);
      let lo = -Infinity;
      let hi = Infinity;
      if (ctx.opset < 11) {
        lo = ctx.node.float('min', -3.4028234663852886e38);
        hi = ctx.node.float('max', 3.4028234663852886e38);
      } else {
        const mn = ctx.optional(1);
        const mx = ctx.optional(2);
        if (mn) lo = numbers(mn)[0];
        if (mx) hi = numbers(mx)[0];
      }
      return [mapUnary(x, (v) => (Number.isNaN(v) ? v : Math.min(hi, Math.max(lo, v))))];
    },
  },
  {
    op: 'Cast',
    attrs: { to: 'int', saturate: 'int' },
    infer: (ctx) => {
      const to = castTarget(ctx);
      ctx.output(0, to, ctx.shape(0));
      const s = ctx.symbolic(0);
      if (s && to && isInteger(to)) ctx.outputSymbolic(0, s);
    },
    kernel: castKernel,
  },
  {
    op: 'CastLike',
    attrs: { saturate: 'int' },
    infer: (ctx) => ctx.output(0, castTarget(ctx), ctx.shape(0)),
    kernel: castKernel,
  },
];

export const ELEMENTWISE_OPS: OpSchema[] = [...UNARY, ...BINARY, ...VARIADIC, ...OTHER];
