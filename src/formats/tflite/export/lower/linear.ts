/**
 * Gemm and MatMul. With a constant right-hand side → FULLY_CONNECTED (weights [N, K], alpha and
 * transB folded into them, a [N]-broadcastable C as the bias; keep_num_dims for inputs of rank
 * above 2); otherwise BATCH_MATMUL, whose adj_x/adj_y flags absorb an operand that is laid out
 * with its last two axes swapped (K after a free Transpose, say), so no TRANSPOSE is emitted.
 */
import type { Node, Value } from '../../../../ir/graph.js';
import { Tensor } from '../../../../ir/tensor.js';
import { Builtin } from '../../model.js';
import type { Kind, LowerContext } from '../context.js';
import { identity, permuteFloats } from '../layout.js';
import { layerBias, layerWeights } from '../weights.js';
import { activationOnGrid, fuseActivation, input, refuse } from './common.js';
import { binaryInto } from './elementwise.js';

function fullyConnected(ctx: LowerContext, node: Node, a: Value, weights: Tensor, bias: Float32Array | undefined): void {
  const fused = fuseActivation(ctx, node);
  const out = fused.out;
  const rank = ctx.rank(a);
  const kind: Kind = ctx.canInt8(a, out) ? 'int8' : 'float';
  if (kind === 'float') ctx.floatOp(node);
  const code = activationOnGrid(ctx, fused.code, out, kind);
  const x = ctx.read(a, identity(rank), kind);
  const base = node.name || out.name;
  const w = layerWeights(ctx, `${base}/weights`, columnsInOrder(weights, ctx.columnOrder.get(a)), weights.dims, 'fc', kind);
  const b = layerBias(ctx, `${base}/bias`, bias ?? new Float32Array(weights.dims[0]), kind, x, w);
  const y = ctx.produce(out, identity(ctx.rank(out)), kind);
  const fields = {
    fused_activation_function: code,
    weights_format: 0,
    keep_num_dims: rank > 2,
    asymmetric_quantize_inputs: ctx.settings.precision === 'dynamic',
  };
  ctx.op(Builtin.FULLY_CONNECTED, [x, w.tensor, b], [y], { type: 'FullyConnectedOptions', fields }, kind === 'int8' ? 4 : 1);
}

/** Weights [N, K] with their columns in the order the input's columns come (see flattenIntoDense). */
function columnsInOrder(weights: Tensor, order: Int32Array | undefined): Float32Array {
  const w = weights.toFloat32();
  if (!order) return w;
  const [n, k] = weights.dims;
  const out = new Float32Array(w.length);
  for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) out[r * k + j] = w[r * k + order[j]];
  return out;
}

/** A matrix transposed. */
function swapped(m: Tensor): Tensor {
  return Tensor.from('float32', [m.dims[1], m.dims[0]], permuteFloats(m.toFloat32(), m.dims, [1, 0]));
}

/** Bias values when C broadcasts along N alone ([N], [1, N], [1] or a scalar); undefined otherwise. */
function vectorBias(c: Tensor, n: number, beta: number): Float32Array | undefined {
  const dims = c.dims.filter((d, i) => !(d === 1 && i < c.dims.length - 1));
  const data = c.toFloat32();
  if (c.size === 1) return new Float32Array(n).fill(data[0] * beta);
  if (dims.length === 1 && dims[0] === n) return data.map((x) => x * beta);
  return undefined;
}

export function lowerGemm(ctx: LowerContext, node: Node): void {
  const a = input(node, 0);
  const bv = input(node, 1);
  const alpha = node.float('alpha', 1);
  const beta = node.float('beta', 1);
  const transA = node.int('transA', 0) === 1;
  const transB = node.int('transB', 0) === 1;
  if (transA) refuse(node, 'transA=1 is not exported (transpose A before the Gemm)');
  if (!ctx.isConstant(bv)) refuse(node, 'a Gemm whose B is computed at run time is not exported (use MatMul)');
  const b = bv.initializer as Tensor;
  let w = transB ? b : swapped(b);
  if (alpha !== 1)
    w = Tensor.from(
      'float32',
      w.dims,
      w.toFloat32().map((x) => x * alpha),
    );
  const c = node.input(2);
  if (!c) {
    fullyConnected(ctx, node, a, w, undefined);
    return;
  }
  const vector = ctx.isConstant(c) ? vectorBias(c.initializer as Tensor, w.dims[0], beta) : undefined;
  if (vector) {
    fullyConnected(ctx, node, a, w, vector);
    return;
  }
  matrixBias(ctx, node, a, w, c, beta);
}

/** Gemm with a full [M, N] C, or one computed at run time: FULLY_CONNECTED, then ADD β·C. */
function matrixBias(ctx: LowerContext, node: Node, a: Value, w: Tensor, c: Value, beta: number): void {
  const out = node.output(0);
  ctx.floatOp(node);
  const x = ctx.read(a, identity(2));
  const base = node.name || out.name;
  const wt = layerWeights(ctx, `${base}/weights`, columnsInOrder(w, ctx.columnOrder.get(a)), w.dims, 'fc', 'float');
  const product = ctx.temp(`${base}/product`, ctx.shape(out), 'float');
  ctx.op(Builtin.FULLY_CONNECTED, [x, wt.tensor, -1], [product], {
    type: 'FullyConnectedOptions',
    fields: { fused_activation_function: 0, weights_format: 0, keep_num_dims: false },
  });
  let cOperand: number;
  if (ctx.isConstant(c)) {
    const ct = c.initializer as Tensor;
    const scaled = Tensor.from(
      'float32',
      ct.dims,
      ct.toFloat32().map((v) => v * beta),
    );
    cOperand = ctx.tensorOperand(`${c.name}/beta`, scaled, 2, identity(2));
  } else {
    if (beta !== 1) refuse(node, 'beta ≠ 1 with a C computed at run time is not exported');
    cOperand = ctx.operand(c, 2, identity(2));
  }
  binaryInto(ctx, Builtin.ADD, 'AddOptions', product, cOperand, out, identity(2), 'float', 0);
}

export function lowerMatMul(ctx: LowerContext, node: Node): void {
  const a = input(node, 0);
  const b = input(node, 1);
  const ra = ctx.rank(a);
  const rb = ctx.rank(b);
  if (ra < 2 || rb < 2) refuse(node, 'MatMul of a vector is not exported (reshape it to a matrix first)');
  if (ctx.isConstant(b) && rb === 2) {
    fullyConnected(ctx, node, a, swapped(b.initializer as Tensor), undefined);
    return;
  }
  const out = node.output(0);
  // BATCH_MATMUL runs in float (its int8 kernel constrains zero points).
  ctx.floatOp(node);
  const [xa, adjX] = swappedOrIdentity(ctx, a);
  const [xb, adjY] = swappedOrIdentity(ctx, b);
  const y = ctx.produce(out, identity(ctx.rank(out)), 'float');
  ctx.op(Builtin.BATCH_MATMUL, [xa, xb], [y], {
    type: 'BatchMatMulOptions',
    fields: { adj_x: adjX, adj_y: adjY, asymmetric_quantize_inputs: false },
  });
}

/** The operand in ONNX order, or in a layout with its last two axes swapped (then adj = true). */
function swappedOrIdentity(ctx: LowerContext, v: Value): [number, boolean] {
  const rank = ctx.rank(v);
  const swapped = identity(rank);
  swapped[rank - 2] = rank - 1;
  swapped[rank - 1] = rank - 2;
  if (!ctx.isConstant(v)) {
    const perm = ctx.layout(v);
    if (perm.every((p, i) => p === swapped[i])) return [ctx.read(v, swapped), true];
  }
  return [ctx.read(v, identity(rank)), false];
}
