/**
 * Element-wise ops: arithmetic with numpy broadcasting (as in TFLite), activations, and unary
 * math. They work in any layout, so they run on the NHWC tensors as the file has them.
 */
import type { Value } from '../../../ir/graph.js';
import { type ImportContext, option } from './context.js';

/**
 * Runs `make` on the op's inputs in NCHW when they all come from spatial ops (see
 * ImportContext.nchwTwins), else in NHWC, and stores the result.
 */
function layoutFree(ctx: ImportContext, inputs: Value[], make: (xs: Value[]) => Value): void {
  const twins = ctx.nchwTwins(inputs);
  ctx.output(0, twins ? ctx.nhwc(make(twins)) : make(inputs));
}

/** ADD/SUB/MUL/DIV and the like: two inputs, broadcasting, optional fused activation. */
export function binary(opType: string) {
  return (ctx: ImportContext): void =>
    layoutFree(ctx, [ctx.input(0), ctx.input(1)], (xs) => ctx.activation(ctx.op(opType, xs), option(ctx, 'fused_activation_function')));
}

export function unary(opType: string, attrs: Record<string, number> = {}) {
  return (ctx: ImportContext): void => layoutFree(ctx, [ctx.input(0)], (xs) => ctx.op(opType, xs, attrs));
}

export function clip(min: number, max: number) {
  return (ctx: ImportContext): void => layoutFree(ctx, [ctx.input(0)], (xs) => ctx.op('Clip', [xs[0], ctx.float(min), ctx.float(max)]));
}

export function leakyRelu(ctx: ImportContext): void {
  ctx.output(0, ctx.op('LeakyRelu', [ctx.input(0)], { alpha: option(ctx, 'alpha', 0.2) }));
}

export function prelu(ctx: ImportContext): void {
  ctx.output(0, ctx.op('PRelu', [ctx.input(0), ctx.input(1)]));
}

export function rsqrt(ctx: ImportContext): void {
  ctx.output(0, ctx.op('Reciprocal', [ctx.op('Sqrt', [ctx.input(0)])]));
}

export function square(ctx: ImportContext): void {
  const x = ctx.input(0);
  ctx.output(0, ctx.op('Mul', [x, x]));
}

export function squaredDifference(ctx: ImportContext): void {
  const d = ctx.op('Sub', [ctx.input(0), ctx.input(1)]);
  ctx.output(0, ctx.op('Mul', [d, d]));
}

/** GELU: exact (erf) or tanh approximation, from standard ops (ONNX's Gelu needs opset 20). */
export function gelu(ctx: ImportContext): void {
  const x = ctx.input(0);
  let inner: Value;
  if (option(ctx, 'approximate')) {
    const cube = ctx.op('Mul', [ctx.op('Mul', [x, x]), x]);
    const arg = ctx.op('Mul', [ctx.op('Add', [x, ctx.op('Mul', [cube, ctx.float(0.044715)])]), ctx.float(Math.sqrt(2 / Math.PI))]);
    inner = ctx.op('Tanh', [arg]);
  } else {
    inner = ctx.op('Erf', [ctx.op('Mul', [x, ctx.float(Math.SQRT1_2)])]);
  }
  const half = ctx.op('Mul', [x, ctx.float(0.5)]);
  ctx.output(0, ctx.op('Mul', [half, ctx.op('Add', [inner, ctx.float(1)])]));
}

/** Comparisons and logic produce bool, arithmetic on them stays as the file has it. */
export function compare(opType: string, negate = false) {
  return (ctx: ImportContext): void => {
    const y = ctx.op(opType, [ctx.input(0), ctx.input(1)]);
    ctx.output(0, negate ? ctx.op('Not', [y]) : y);
  };
}

export function select(ctx: ImportContext): void {
  ctx.output(0, ctx.op('Where', [ctx.input(0), ctx.input(1), ctx.input(2)]));
}
