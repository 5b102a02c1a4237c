/**
 * The softmax family: Softmax, LogSoftmax and Hardmax, which normalize lanes along one axis
 * (before opset 13, the rows of the input coerced to 2-D at that axis).
 * Spec: https://onnx.ai/onnx/operators/onnx__Softmax.html
 */
import { shapeSize } from '../ir/tensor.js';
import { fromOutput0, withGradients } from './grad.js';
import type { GradContext, GradRule, InferContext, KernelContext, OpSchema } from './schema.js';
import { axisOf, fromNumbers, numbers, sameAsInput } from './util.js';

type Ctx = InferContext | KernelContext;

// ---------------------------------------------------------------- Softmax, LogSoftmax, Hardmax

/**
 * The [outer, length, inner] view a softmax-family op normalizes over. Before opset 13 the input
 * is coerced to 2-D at `axis` (default 1) and each row of the flattened tail is normalized; from
 * 13 only `axis` (default −1) is.
 */
function softmaxView(ctx: Ctx, dims: readonly number[]): [number, number, number] {
  if (ctx.opset < 13) {
    const rank = dims.length;
    const raw = ctx.node.int('axis', 1);
    const a = raw < 0 ? raw + rank : raw;
    if (a < 0 || a > rank) return ctx.fail(`axis ${raw} is out of range for rank ${rank}`);
    return [shapeSize(dims.slice(0, a)), shapeSize(dims.slice(a)), 1];
  }
  const a = axisOf(ctx, ctx.node.int('axis', -1), dims.length);
  return [shapeSize(dims.slice(0, a)), dims[a], shapeSize(dims.slice(a + 1))];
}

/** A softmax-family op: `fn` rewrites one normalized lane (`get(j)` → `set(j, …)`). */
function softmaxLike(op: string, fn: (get: (j: number) => number, n: number, set: (j: number, v: number) => void) => void): OpSchema {
  return {
    op,
    attrs: { axis: 'int' },
    infer(ctx) {
      const r = ctx.rank(0);
      if (r !== undefined && ctx.opset >= 13) axisOf(ctx, ctx.node.int('axis', -1), r);
      sameAsInput(ctx);
    },
    kernel(ctx) {
      const x = ctx.input(0);
      const [outer, n, inner] = softmaxView(ctx, x.dims);
      const v = numbers(x);
      const y = new Float64Array(v.length);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const base = o * n * inner + i;
          fn(
            (j) => v[base + j * inner],
            n,
            (j, val) => {
              y[base + j * inner] = val;
            },
          );
        }
      }
      return [fromNumbers(x.dtype, x.dims, y)];
    },
  };
}

/** Max of a lane, subtracted before exponentiating so large inputs do not overflow. */
function laneMax(get: (j: number) => number, n: number): number {
  let m = -Infinity;
  for (let j = 0; j < n; j++) m = Math.max(m, get(j));
  return m;
}

const SCHEMAS: OpSchema[] = [
  softmaxLike('Softmax', (get, n, set) => {
    const m = laneMax(get, n);
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(get(j) - m);
    for (let j = 0; j < n; j++) set(j, Math.exp(get(j) - m) / s);
  }),
  softmaxLike('LogSoftmax', (get, n, set) => {
    const m = laneMax(get, n);
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(get(j) - m);
    const log = Math.log(s);
    for (let j = 0; j < n; j++) set(j, get(j) - m - log);
  }),
  softmaxLike('Hardmax', (get, n, set) => {
    // One-hot at the first maximum.
    let best = 0;
    for (let j = 1; j < n; j++) if (get(j) > get(best)) best = j;
    for (let j = 0; j < n; j++) set(j, j === best ? 1 : 0);
  }),
];

// ---------------------------------------------------------------- gradients (opset ≥ 13: one axis)

const softmaxAxis = (c: GradContext): number => axisOf(c, c.node.int('axis', -1), c.shape(c.input(0)).length);

const softmaxGrads: Record<string, GradRule> = {
  // dX = y·(dY − Σ dY·y) along the axis.
  Softmax: fromOutput0((c, dy) => {
    if (!c.needs(0)) return;
    const y = c.output(0);
    const dot = c.reduce('ReduceSum', c.op('Mul', [dy, y]), [softmaxAxis(c)], true);
    c.setGrad(0, c.op('Mul', [y, c.op('Sub', [dy, dot])]));
  }),
  // dX = dY − exp(y)·Σ dY along the axis.
  LogSoftmax: fromOutput0((c, dy) => {
    if (!c.needs(0)) return;
    const total = c.reduce('ReduceSum', dy, [softmaxAxis(c)], true);
    c.setGrad(0, c.op('Sub', [dy, c.op('Mul', [c.op('Exp', [c.output(0)]), total])]));
  }),
  // Piecewise constant.
  Hardmax: () => {},
};

export const SOFTMAX_OPS: OpSchema[] = withGradients(SCHEMAS, softmaxGrads);
