/**
 * Elementwise operators: unary math and activations, broadcasting binary arithmetic, comparison
 * and logic, variadic Sum/Mean/Max/Min, Where, Clip, Cast. Spec: https://onnx.ai/onnx/operators/
 */

import { dimAdd, dimDiv, dimMul, dimSub } from '../ir/dims.js';
import { type DType, dtypeCode, dtypeFromCode, isFloat, isInteger } from '../ir/dtype.js';
import type { Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import type { Dim } from '../ir/types.js';
import { fromOutput0, unaryRule, withGradients } from './grad.js';
import type { GradContext, GradRule, InferContext, KernelContext, OpSchema } from './schema.js';
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

// ---------------------------------------------------------------- gradients

/** dX = dY·f'(x), written with whichever of x and y = f(x) makes it cheapest. */
const unaryGrads: Record<string, GradRule> = {
  Relu: unaryRule((c, _x, y, dy) => c.op('Where', [c.op('Greater', [y, c.scalar(0, c.dtype(y))]), dy, c.scalar(0, c.dtype(y))])),
  LeakyRelu: unaryRule((c, x, _y, dy) => {
    const alpha = c.node.float('alpha', 0.01);
    return c.op('Where', [c.op('Greater', [x, c.scalar(0, c.dtype(x))]), dy, c.op('Mul', [dy, c.scalar(alpha, c.dtype(x))])]);
  }),
  Sigmoid: unaryRule((c, _x, y, dy) => c.op('Mul', [dy, c.op('Mul', [y, c.op('Sub', [c.scalar(1, c.dtype(y)), y])])])),
  Tanh: unaryRule((c, _x, y, dy) => c.op('Mul', [dy, c.op('Sub', [c.scalar(1, c.dtype(y)), c.op('Mul', [y, y])])])),
  // y = clip(αx + β, 0, 1): slope α where the clip is not active (read off y).
  HardSigmoid: unaryRule((c, _x, y, dy) => {
    const t = c.dtype(y);
    const inside = c.op('And', [c.op('Greater', [y, c.scalar(0, t)]), c.op('Less', [y, c.scalar(1, t)])]);
    return c.op('Where', [inside, c.op('Mul', [dy, c.scalar(c.node.float('alpha', 0.2), t)]), c.scalar(0, t)]);
  }),
  // y = x·clip(x/6 + 1/2, 0, 1): slope 0 below −3, 1 above 3, x/3 + 1/2 between.
  HardSwish: unaryRule((c, x, _y, dy) => {
    const t = c.dtype(x);
    const mid = c.op('Add', [c.op('Mul', [x, c.scalar(1 / 3, t)]), c.scalar(0.5, t)]);
    const slope = c.op('Where', [
      c.op('Less', [x, c.scalar(-3, t)]),
      c.scalar(0, t),
      c.op('Where', [c.op('Greater', [x, c.scalar(3, t)]), c.scalar(1, t), mid]),
    ]);
    return c.op('Mul', [dy, slope]);
  }),
  Exp: unaryRule((c, _x, y, dy) => c.op('Mul', [dy, y])),
  Log: unaryRule((c, x, _y, dy) => c.op('Div', [dy, x])),
  Neg: unaryRule((c, _x, _y, dy) => c.op('Neg', [dy])),
  Sqrt: unaryRule((c, _x, y, dy) => c.op('Div', [c.op('Mul', [dy, c.scalar(0.5, c.dtype(y))]), y])),
  Abs: unaryRule((c, x, _y, dy) => c.op('Mul', [dy, c.op('Sign', [x])])),
  Reciprocal: unaryRule((c, _x, y, dy) => c.op('Neg', [c.op('Mul', [dy, c.op('Mul', [y, y])])])),
  Softplus: unaryRule((c, x, _y, dy) => c.op('Mul', [dy, c.op('Sigmoid', [x])])),
  Softsign: unaryRule((c, x, _y, dy) => {
    const d = c.op('Add', [c.scalar(1, c.dtype(x)), c.op('Abs', [x])]);
    return c.op('Div', [dy, c.op('Mul', [d, d])]);
  }),
  Elu: unaryRule((c, x, y, dy) => {
    const t = c.dtype(x);
    const alpha = c.node.float('alpha', 1);
    return c.op('Where', [c.op('Greater', [x, c.scalar(0, t)]), dy, c.op('Mul', [dy, c.op('Add', [y, c.scalar(alpha, t)])])]);
  }),
  Selu: unaryRule((c, x, y, dy) => {
    const t = c.dtype(x);
    const alpha = c.node.float('alpha', 1.6732631921768188);
    const gamma = c.node.float('gamma', 1.0507010221481323);
    const neg = c.op('Mul', [dy, c.op('Add', [y, c.scalar(alpha * gamma, t)])]);
    return c.op('Where', [c.op('Greater', [x, c.scalar(0, t)]), c.op('Mul', [dy, c.scalar(gamma, t)]), neg]);
  }),
  Erf: unaryRule((c, x, _y, dy) => {
    const t = c.dtype(x);
    const e = c.op('Exp', [c.op('Neg', [c.op('Mul', [x, x])])]);
    return c.op('Mul', [dy, c.op('Mul', [e, c.scalar(2 / Math.sqrt(Math.PI), t)])]);
  }),
  Sin: unaryRule((c, x, _y, dy) => c.op('Mul', [dy, c.op('Cos', [x])])),
  Cos: unaryRule((c, x, _y, dy) => c.op('Neg', [c.op('Mul', [dy, c.op('Sin', [x])])])),
};

/** Piecewise-constant ops: their gradient is zero wherever it exists, so no input gets one. */
const zeroGrads: Record<string, GradRule> = Object.fromEntries(['Floor', 'Ceil', 'Round', 'Sign'].map((op) => [op, () => {}]));

/** A broadcasting binary op: each input's gradient is summed back over the axes it was broadcast along. */
function binaryRule(da: ((c: GradContext, dy: Value) => Value) | undefined, db: (c: GradContext, dy: Value) => Value): GradRule {
  return fromOutput0((c, dy) => {
    const yShape = c.shape(c.output(0));
    if (c.needs(0)) c.setGrad(0, da ? c.sumTo(da(c, dy), yShape, c.input(0)) : c.sumTo(dy, yShape, c.input(0)));
    if (c.needs(1)) c.setGrad(1, c.sumTo(db(c, dy), yShape, c.input(1)));
  });
}

/** The exponent of Pow as the base's type: a constant when it is one. */
function powExponent(c: GradContext, minus: number): Value {
  const a = c.input(0);
  const b = c.input(1);
  const t = c.dtype(a);
  if (minus === 0 && c.dtype(b) === t) return b;
  const k = c.constant(b);
  if (k)
    return c.tensor(
      fromNumbers(
        t,
        k.dims,
        Array.from(numbers(k), (e) => e - minus),
      ),
      'exponent',
    );
  const bt = c.dtype(b) === t ? b : c.op('Cast', [b], { to: dtypeCode(t) });
  return minus === 0 ? bt : c.op('Sub', [bt, c.scalar(minus, t)]);
}

const binaryGrads: Record<string, GradRule> = {
  Add: binaryRule(undefined, (_c, dy) => dy),
  Sub: fromOutput0((c, dy) => {
    const yShape = c.shape(c.output(0));
    if (c.needs(0)) c.setGrad(0, c.sumTo(dy, yShape, c.input(0)));
    // Negate after the reduction: the smaller tensor.
    if (c.needs(1)) c.setGrad(1, c.op('Neg', [c.sumTo(dy, yShape, c.input(1))]));
  }),
  Mul: binaryRule(
    (c, dy) => c.op('Mul', [dy, c.input(1)]),
    (c, dy) => c.op('Mul', [dy, c.input(0)]),
  ),
  Div: fromOutput0((c, dy) => {
    const yShape = c.shape(c.output(0));
    if (c.needs(0)) c.setGrad(0, c.sumTo(c.op('Div', [dy, c.input(1)]), yShape, c.input(0)));
    // d(a/b)/db = −y/b.
    if (c.needs(1)) {
      const g = c.op('Div', [c.op('Mul', [dy, c.output(0)]), c.input(1)]);
      c.setGrad(1, c.op('Neg', [c.sumTo(g, yShape, c.input(1))]));
    }
  }),
  // d(a^b)/da = b·a^(b−1); d(a^b)/db = y·ln a.
  Pow: fromOutput0((c, dy) => {
    const yShape = c.shape(c.output(0));
    const a = c.input(0);
    if (c.needs(0)) {
      const k = c.constant(c.input(1));
      const e = k?.size === 1 ? numbers(k)[0] : undefined;
      let local: Value;
      if (e === 1) local = dy;
      else if (e === 2) local = c.op('Mul', [dy, c.op('Mul', [a, c.scalar(2, c.dtype(a))])]);
      else local = c.op('Mul', [dy, c.op('Mul', [powExponent(c, 0), c.op('Pow', [a, powExponent(c, 1)])])]);
      c.setGrad(0, c.sumTo(local, yShape, a));
    }
    if (c.needs(1)) {
      if (c.dtype(c.input(1)) !== c.dtype(a)) c.fail('the gradient of an exponent of another type than the base is not supported');
      c.setGrad(1, c.sumTo(c.op('Mul', [dy, c.op('Mul', [c.output(0), c.op('Log', [a])])]), yShape, c.input(1)));
    }
  }),
  // Slope broadcasts to X one way; the output has X's shape.
  PRelu: fromOutput0((c, dy) => {
    const x = c.input(0);
    const t = c.dtype(x);
    const negative = c.op('Less', [x, c.scalar(0, t)]);
    if (c.needs(0)) c.setGrad(0, c.op('Where', [negative, c.op('Mul', [dy, c.input(1)]), dy]));
    if (c.needs(1)) c.setGrad(1, c.sumTo(c.op('Where', [negative, c.op('Mul', [dy, x]), c.scalar(0, t)]), c.shape(x), c.input(1)));
  }),
};

/** Sum/Mean: every input gets dY (over n for Mean); Max/Min: the inputs equal to the result do (all of them on ties). */
function variadicRule(kind: 'sum' | 'mean' | 'pick'): GradRule {
  return fromOutput0((c, dy) => {
    const y = c.output(0);
    const yShape = c.shape(y);
    const t = c.dtype(y);
    const n = c.node.inputs.length;
    const scaled = kind === 'mean' ? c.op('Mul', [dy, c.scalar(1 / n, t)]) : dy;
    for (let i = 0; i < n; i++) {
      if (!c.needs(i)) continue;
      const local = kind === 'pick' ? c.op('Where', [c.op('Equal', [c.input(i), y]), dy, c.scalar(0, t)]) : scaled;
      c.setGrad(i, c.sumTo(local, yShape, c.input(i)));
    }
  });
}

const otherGrads: Record<string, GradRule> = {
  Sum: variadicRule('sum'),
  Mean: variadicRule('mean'),
  Max: variadicRule('pick'),
  Min: variadicRule('pick'),
  Where: fromOutput0((c, dy) => {
    const yShape = c.shape(c.output(0));
    const t = c.dtype(c.output(0));
    const zero = c.scalar(0, t);
    const cond = c.input(0);
    if (c.needs(1)) c.setGrad(1, c.sumTo(c.op('Where', [cond, dy, zero]), yShape, c.input(1)));
    if (c.needs(2)) c.setGrad(2, c.sumTo(c.op('Where', [cond, zero, dy]), yShape, c.input(2)));
  }),
  // dY passes where min ≤ x ≤ max (as PyTorch's clamp does at the bounds).
  Clip: unaryRule((c, x, _y, dy) => {
    if (c.needs(1) || c.needs(2)) c.fail('gradients with respect to the bounds of Clip are not supported');
    const lo = c.optionalInput(1);
    const hi = c.optionalInput(2);
    const conds: Value[] = [];
    if (lo) conds.push(c.op('GreaterOrEqual', [x, lo]));
    if (hi) conds.push(c.op('LessOrEqual', [x, hi]));
    if (conds.length === 0) return dy;
    const inside = conds.length === 1 ? conds[0] : c.op('And', conds);
    return c.op('Where', [inside, dy, c.scalar(0, c.dtype(x))]);
  }),
  // Between float types the gradient is cast back; a cast to an integer type has no varying output.
  Cast: unaryRule((c, x, y, dy) => {
    if (!isFloat(c.dtype(x))) c.fail(`the gradient of a cast from ${c.dtype(x)} is not defined`);
    return c.dtype(x) === c.dtype(y) ? dy : c.op('Cast', [dy], { to: dtypeCode(c.dtype(x)) });
  }),
};

export const ELEMENTWISE_OPS: OpSchema[] = withGradients([...UNARY, ...BINARY, ...VARIADIC, ...OTHER], {
  ...unaryGrads,
  ...zeroGrads,
  ...binaryGrads,
  ...otherGrads,
});
