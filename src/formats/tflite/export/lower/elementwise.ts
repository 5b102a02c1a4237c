/**
 * Elementwise ops, which work in whatever layout their inputs come in: the output takes the
 * layout of the first input computed at run time, and every other operand is brought to it
 * (constants are re-laid-out when written, at no run-time cost; ONNX's trailing-dims
 * broadcasting is made explicit by giving operands the output's rank).
 * - Add/Sub/Mul/Div → ADD/SUB/MUL/DIV (Relu/Relu6 after Add fused); a division by a constant is a
 *   MUL by its reciprocal (MUL has an int8 kernel, DIV does not); Max/Min → MAXIMUM/MINIMUM;
 *   Pow by 2 / 0.5 → MUL / SQRT, else POW.
 * - Relu, Sigmoid, Tanh, HardSwish, LeakyRelu, PRelu, Elu, Exp, Log, Sqrt, Neg, Abs, Floor, Ceil,
 *   Round, Sin, Cos, Gelu → their builtins; Clip → RELU / RELU6 / RELU_N1_TO_1 when its bounds
 *   are those, else MAXIMUM then MINIMUM; HardSigmoid(αx+β) = RELU6(6αx + 6β) / 6 as
 *   MUL → ADD(fused RELU6) → MUL; Reciprocal → DIV(1, x); inference BatchNormalization → MUL, ADD.
 * - Identity, Dropout and Casts between float types pass their input's tensors on.
 */
import type { Node, Value } from '../../../../ir/graph.js';
import { Tensor } from '../../../../ir/tensor.js';
import { clipBounds } from '../../../../passes/fusion-helpers.js';
import { Activation, type ActivationValue, Builtin } from '../../model.js';
import type { Kind, LowerContext } from '../context.js';
import { identity, permuteShape } from '../layout.js';
import { type ActivationParams, FIXED_OUTPUT } from '../quant.js';
import { activationOnGrid, fuseActivation, input, type Lowering, refuse } from './common.js';

/** The layout for an op over `values`: that of the first non-constant one of full rank. */
export function commonLayout(ctx: LowerContext, values: Value[], rank: number): readonly number[] {
  for (const v of values) if (!ctx.isConstant(v) && ctx.rank(v) === rank) return ctx.layout(v);
  return identity(rank);
}

/** Emits a binary op from two ready tensors into `out`. */
export function binaryInto(
  ctx: LowerContext,
  code: number,
  optionsType: string | undefined,
  t1: number,
  t2: number,
  out: Value,
  perm: readonly number[],
  kind: Kind,
  act: number,
): number {
  const y = ctx.produce(out, perm, kind);
  const fields = { fused_activation_function: activationOnGrid(ctx, act as ActivationValue, out, kind) };
  ctx.op(code, [t1, t2], [y], optionsType ? { type: optionsType, fields } : undefined);
  return y;
}

const BINARY: Record<string, { code: number; options?: string; int8: boolean }> = {
  Add: { code: Builtin.ADD, options: 'AddOptions', int8: true },
  Sub: { code: Builtin.SUB, options: 'SubOptions', int8: true },
  Mul: { code: Builtin.MUL, options: 'MulOptions', int8: true },
  Div: { code: Builtin.DIV, options: 'DivOptions', int8: false },
  Max: { code: Builtin.MAXIMUM, int8: false },
  Min: { code: Builtin.MINIMUM, int8: false },
  Pow: { code: Builtin.POW, int8: false },
};

function lowerBinary(ctx: LowerContext, node: Node): void {
  if (node.inputs.length !== 2) refuse(node, `${node.inputs.length} inputs (TFLite's ${node.opType} takes two)`);
  let a = input(node, 0);
  let b = input(node, 1);
  let opType = node.opType;
  let bConst: Tensor | undefined;
  if (opType === 'Div' && ctx.isConstant(b)) {
    const t = b.initializer as Tensor;
    bConst = Tensor.from(
      'float32',
      t.dims,
      t.toFloat32().map((x) => 1 / x),
    );
    opType = 'Mul';
  }
  if (opType === 'Pow' && ctx.isConstant(b) && (b.initializer as Tensor).size === 1) {
    const e = (b.initializer as Tensor).toFloat32()[0];
    if (e === 1) {
      ctx.alias(a, node.output(0));
      return;
    }
    if (e === 0.5) {
      unary(ctx, node, Builtin.SQRT, false);
      return;
    }
    if (e === 2) {
      b = a;
      opType = 'Mul';
    }
  }
  const spec = BINARY[opType];
  if (!spec) refuse(node, 'no TFLite builtin');
  const { code: act, out } = opType === 'Add' ? fuseActivation(ctx, node) : { code: Activation.NONE, out: node.output(0) };
  const rank = ctx.rank(out);
  // Keep a constant second: TFLite broadcasts either side, but the computed input sets the layout.
  if (ctx.isConstant(a) && !ctx.isConstant(b) && (opType === 'Add' || opType === 'Mul')) [a, b] = [b, a];
  const perm = commonLayout(ctx, [a, b], rank);
  const kind: Kind = spec.int8 && ctx.canInt8(a, out) && (bConst !== undefined || ctx.isConstant(b) || ctx.canInt8(b)) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const t1 = ctx.operand(a, rank, perm, kind);
  const t2 = bConst ? ctx.tensorOperand(`${b.name}/reciprocal`, bConst, rank, perm, kind) : ctx.operand(b, rank, perm, kind);
  binaryInto(ctx, spec.code, spec.options, t1, t2, out, perm, kind, act);
}

/** A unary op in the input's layout; int8 when `int8` and both sides have parameters. */
function unary(
  ctx: LowerContext,
  node: Node,
  code: number,
  int8: boolean,
  options?: { type: string; fields: Record<string, number | boolean> },
  fixed?: ActivationParams,
): void {
  const x = input(node, 0);
  const out = node.output(0);
  const perm = ctx.layout(x);
  const kind: Kind = int8 && ctx.canInt8(x, out) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const t = ctx.read(x, perm, kind);
  const y = ctx.produce(out, perm, kind, kind === 'int8' ? fixed : undefined);
  ctx.op(code, [t], [y], options);
}

const simple =
  (code: number, int8: boolean, fixed?: ActivationParams): Lowering =>
  (ctx, node) =>
    unary(ctx, node, code, int8, undefined, fixed);

function lowerClip(ctx: LowerContext, node: Node): void {
  const bounds = clipBounds(node);
  if (!bounds) refuse(node, 'its min and max must be constants');
  // Attribute-style bounds default to ±FLOAT32_MAX: unbounded.
  const b = {
    min: bounds.min <= -3.4e38 ? Number.NEGATIVE_INFINITY : bounds.min,
    max: bounds.max >= 3.4e38 ? Number.POSITIVE_INFINITY : bounds.max,
  };
  if (b.min === 0 && b.max === 6) {
    unary(ctx, node, Builtin.RELU6, true);
    return;
  }
  if (b.min === 0 && b.max === Number.POSITIVE_INFINITY) {
    unary(ctx, node, Builtin.RELU, true);
    return;
  }
  if (b.min === -1 && b.max === 1) {
    unary(ctx, node, Builtin.RELU_N1_TO_1, true);
    return;
  }
  const x = input(node, 0);
  const out = node.output(0);
  const perm = ctx.layout(x);
  ctx.floatOp(node);
  let t = ctx.read(x, perm);
  const shape = permuteShape(ctx.shape(x), perm);
  const base = node.name || out.name;
  if (b.min > Number.NEGATIVE_INFINITY && b.max < Number.POSITIVE_INFINITY) {
    const lo = ctx.temp(`${base}/max`, shape, 'float');
    ctx.op(Builtin.MAXIMUM, [t, ctx.scalar(`${base}/min`, b.min, 'float')], [lo]);
    t = lo;
  }
  const y = ctx.produce(out, perm, 'float');
  if (b.max < Number.POSITIVE_INFINITY) ctx.op(Builtin.MINIMUM, [t, ctx.scalar(`${base}/max_value`, b.max, 'float')], [y]);
  else ctx.op(Builtin.MAXIMUM, [t, ctx.scalar(`${base}/min`, b.min, 'float')], [y]);
}

function lowerHardSigmoid(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const alpha = node.float('alpha', 0.2);
  const beta = node.float('beta', 0.5);
  const perm = ctx.layout(x);
  // int8: each step gets the grid its range implies — 6α·x on x's grid scaled by 6α, the RELU6
  // output on [0, 6] — and the last MUL requantizes to the output's own parameters.
  const kind: Kind = alpha > 0 && ctx.canInt8(x, out) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const t = ctx.read(x, perm, kind);
  const shape = permuteShape(ctx.shape(x), perm);
  const base = node.name || out.name;
  const xq = kind === 'int8' ? ctx.paramsOf(x) : undefined;
  const scaledParams = xq ? { scale: xq.scale * 6 * alpha, zeroPoint: xq.zeroPoint } : undefined;
  const clippedParams = xq ? { scale: 6 / 255, zeroPoint: -128 } : undefined;
  const scaled = ctx.temp(`${base}/scaled`, shape, kind, scaledParams);
  ctx.op(Builtin.MUL, [t, ctx.scalar(`${base}/6alpha`, 6 * alpha, kind)], [scaled], {
    type: 'MulOptions',
    fields: { fused_activation_function: 0 },
  });
  const clipped = ctx.temp(`${base}/relu6`, shape, kind, clippedParams);
  ctx.op(Builtin.ADD, [scaled, ctx.scalar(`${base}/6beta`, 6 * beta, kind)], [clipped], {
    type: 'AddOptions',
    fields: { fused_activation_function: Activation.RELU6 },
  });
  const y = ctx.produce(out, perm, kind);
  ctx.op(Builtin.MUL, [clipped, ctx.scalar(`${base}/sixth`, 1 / 6, kind)], [y], {
    type: 'MulOptions',
    fields: { fused_activation_function: 0 },
  });
}

function lowerPRelu(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const slope = input(node, 1, 'slope');
  const out = node.output(0);
  const rank = ctx.rank(x);
  const perm = ctx.layout(x);
  const kind: Kind = ctx.canInt8(x, out) && ctx.isConstant(slope) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const t = ctx.read(x, perm, kind);
  const s = ctx.operand(slope, rank, perm, kind);
  const y = ctx.produce(out, perm, kind);
  ctx.op(Builtin.PRELU, [t, s], [y]);
}

function lowerReciprocal(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const perm = ctx.layout(x);
  ctx.floatOp(node);
  const t = ctx.read(x, perm);
  const y = ctx.produce(out, perm, 'float');
  ctx.op(Builtin.DIV, [ctx.scalar(`${node.name || out.name}/one`, 1, 'float'), t], [y], {
    type: 'DivOptions',
    fields: { fused_activation_function: 0 },
  });
}

function lowerBatchNorm(ctx: LowerContext, node: Node): void {
  const x = input(node, 0);
  const out = node.output(0);
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => ctx.constant(input(node, i), `input ${i}`, node).toFloat32());
  const eps = node.float('epsilon', 1e-5);
  const c = scale.length;
  const mul = new Float32Array(c);
  const add = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    mul[i] = scale[i] / Math.sqrt(variance[i] + eps);
    add[i] = bias[i] - mean[i] * mul[i];
  }
  const rank = ctx.rank(x);
  const dims = [c, ...new Array<number>(rank - 2).fill(1)];
  const perm = ctx.layout(x);
  ctx.floatOp(node);
  const t = ctx.read(x, perm);
  const base = node.name || out.name;
  const scaled = ctx.temp(`${base}/scaled`, permuteShape(ctx.shape(x), perm), 'float');
  ctx.op(Builtin.MUL, [t, ctx.tensorOperand(`${base}/mul`, Tensor.from('float32', dims, mul), rank, perm)], [scaled], {
    type: 'MulOptions',
    fields: { fused_activation_function: 0 },
  });
  const y = ctx.produce(out, perm, 'float');
  ctx.op(Builtin.ADD, [scaled, ctx.tensorOperand(`${base}/add`, Tensor.from('float32', dims, add), rank, perm)], [y], {
    type: 'AddOptions',
    fields: { fused_activation_function: 0 },
  });
}

function lowerPassThrough(ctx: LowerContext, node: Node): void {
  if (node.opType === 'Cast') {
    const to = node.int('to');
    // FLOAT (1) to FLOAT: nothing to do. Other casts change what the tensor holds.
    if (to !== 1) refuse(node, 'casts to non-float types are not exported');
  }
  if (node.opType === 'Dropout' && node.outputs[1]) refuse(node, 'a Dropout mask output is not exported');
  ctx.alias(input(node, 0), node.output(0));
}

function lowerLeakyRelu(ctx: LowerContext, node: Node): void {
  unary(ctx, node, Builtin.LEAKY_RELU, true, { type: 'LeakyReluOptions', fields: { alpha: node.float('alpha', 0.01) } });
}

function lowerGelu(ctx: LowerContext, node: Node): void {
  unary(ctx, node, Builtin.GELU, false, { type: 'GeluOptions', fields: { approximate: node.str('approximate', 'none') === 'tanh' } });
}

export const ELEMENTWISE: Record<string, Lowering> = {
  Add: lowerBinary,
  Sub: lowerBinary,
  Mul: lowerBinary,
  Div: lowerBinary,
  Max: lowerBinary,
  Min: lowerBinary,
  Pow: lowerBinary,
  Relu: simple(Builtin.RELU, true),
  Sigmoid: simple(Builtin.LOGISTIC, true, FIXED_OUTPUT.LOGISTIC),
  Tanh: simple(Builtin.TANH, true, FIXED_OUTPUT.TANH),
  HardSwish: simple(Builtin.HARD_SWISH, true),
  Elu: simple(Builtin.ELU, false),
  Exp: simple(Builtin.EXP, false),
  Log: simple(Builtin.LOG, false),
  Sqrt: simple(Builtin.SQRT, false),
  Neg: simple(Builtin.NEG, false),
  Abs: simple(Builtin.ABS, false),
  Floor: simple(Builtin.FLOOR, false),
  Ceil: simple(Builtin.CEIL, false),
  Round: simple(Builtin.ROUND, false),
  Sin: simple(Builtin.SIN, false),
  Cos: simple(Builtin.COS, false),
  LeakyRelu: lowerLeakyRelu,
  Gelu: lowerGelu,
  Clip: lowerClip,
  HardSigmoid: lowerHardSigmoid,
  PRelu: lowerPRelu,
  Reciprocal: lowerReciprocal,
  BatchNormalization: lowerBatchNorm,
  Identity: lowerPassThrough,
  Dropout: lowerPassThrough,
  Cast: lowerPassThrough,
};
