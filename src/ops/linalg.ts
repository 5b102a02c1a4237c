/**
 * Linear algebra: MatMul (numpy matmul), Gemm, the integer and quantized matmuls MatMulInteger
 * and QLinearMatMul, Einsum, and Det. Spec: https://onnx.ai/onnx/operators/
 */

import type { AttrInput } from '../ir/attributes.js';
import { broadcastShapes, dimEquals } from '../ir/dims.js';
import { type DType, isInteger, valueRange } from '../ir/dtype.js';
import type { Value } from '../ir/graph.js';
import { shapeSize, type Tensor } from '../ir/tensor.js';
import { type Dim, formatShape, type Shape } from '../ir/types.js';
import { fromOutput0, withGradients } from './grad.js';
import type { GradContext, GradRule, InferContext, KernelContext, OpSchema } from './schema.js';
import { broadcastDims, broadcastIndices, f32, fromNumbers, numbers, roundHalfEven, strides } from './util.js';

// ---------------------------------------------------------------- MatMul shapes and values

/**
 * numpy matmul's shape rule: a 1-D first operand is a row [1,K] and a 1-D second operand a
 * column [K,1], and the promoted dim is dropped again; leading (batch) dims broadcast.
 */
function matmulShape(ctx: InferContext, a: Shape, b: Shape): Shape {
  if (a.length === 0 || b.length === 0) return ctx.fail('MatMul operands must have rank at least 1');
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const k1 = a2[a2.length - 1];
  const k2 = b2[b2.length - 2];
  if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) ctx.fail(`MatMul inner dims differ: ${k1} and ${k2}`);
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]);
  if (typeof batch === 'string') return ctx.fail(batch);
  const out: Shape = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]);
  if (b.length > 1) out.push(b2[b2.length - 1]);
  return out;
}

function matmulInfer(ctx: InferContext, dtype: DType | undefined, a = 0, b = 1): void {
  const sa = ctx.shape(a);
  const sb = ctx.shape(b);
  ctx.output(0, dtype, sa && sb ? matmulShape(ctx, sa, sb) : undefined);
}

interface Values {
  dims: number[];
  values: Float64Array;
}

/** Batched numpy matmul of two arrays of numbers, in float64 (exact for integer products below 2^53). */
function matmulValues(
  ctx: KernelContext,
  a: ArrayLike<number>,
  aDims: readonly number[],
  b: ArrayLike<number>,
  bDims: readonly number[],
): Values {
  if (aDims.length === 0 || bDims.length === 0) return ctx.fail('MatMul operands must have rank at least 1');
  const a2 = aDims.length === 1 ? [1, aDims[0]] : aDims;
  const b2 = bDims.length === 1 ? [bDims[0], 1] : bDims;
  const [m, k] = a2.slice(-2);
  const [k2, n] = b2.slice(-2);
  if (k !== k2) return ctx.fail(`MatMul inner dims differ: ${k} and ${k2}`);
  const aBatch = a2.slice(0, -2);
  const bBatch = b2.slice(0, -2);
  const batch = broadcastDims(ctx, aBatch, bBatch);
  const aMap = broadcastIndices(aBatch, batch);
  const bMap = broadcastIndices(bBatch, batch);
  const count = shapeSize(batch);
  const values = new Float64Array(count * m * n);
  for (let t = 0; t < count; t++) {
    const aOff = aMap[t] * m * k;
    const bOff = bMap[t] * k * n;
    const oOff = t * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[aOff + i * k + p] * b[bOff + p * n + j];
        values[oOff + i * n + j] = s;
      }
    }
  }
  const dims = [...batch];
  if (aDims.length > 1) dims.push(m);
  if (bDims.length > 1) dims.push(n);
  return { dims, values };
}

const matmul: OpSchema = {
  op: 'MatMul',
  infer: (ctx) => matmulInfer(ctx, ctx.dtype(0) ?? ctx.dtype(1)),
  kernel(ctx) {
    const a = ctx.input(0);
    const b = ctx.input(1);
    const r = matmulValues(ctx, numbers(a), a.dims, numbers(b), b.dims);
    return [fromNumbers(a.dtype, r.dims, r.values)];
  },
};

// ---------------------------------------------------------------- Gemm

const gemm: OpSchema = {
  op: 'Gemm',
  attrs: { alpha: 'float', beta: 'float', transA: 'int', transB: 'int', broadcast: 'int' },
  infer(ctx) {
    const dtype = ctx.dtype(0) ?? ctx.dtype(1);
    const a = ctx.shape(0);
    const b = ctx.shape(1);
    if (!a || !b) return ctx.output(0, dtype, [null, null]);
    if (a.length !== 2 || b.length !== 2) return ctx.fail(`Gemm needs 2-D A and B, got ranks ${a.length} and ${b.length}`);
    const transA = ctx.node.int('transA', 0) !== 0;
    const transB = ctx.node.int('transB', 0) !== 0;
    const [m, k1] = transA ? [a[1], a[0]] : a;
    const [k2, n] = transB ? [b[1], b[0]] : b;
    if (typeof k1 === 'number' && typeof k2 === 'number' && k1 !== k2) ctx.fail(`Gemm inner dims differ: ${k1} and ${k2}`);
    const c = ctx.hasInput(2) ? ctx.shape(2) : undefined;
    if (c) {
      // C broadcasts one way, to [M, N]; it may pin down dims A and B leave unknown.
      const out = broadcastShapes([[m, n], c]);
      if (typeof out === 'string' || out.length !== 2)
        return ctx.fail(`Gemm C ${formatShape(c)} does not broadcast to ${formatShape([m, n])}`);
      return ctx.output(0, dtype, [m ?? out[0], n ?? out[1]]);
    }
    ctx.output(0, dtype, [m, n]);
  },
  kernel(ctx) {
    const a = ctx.input(0);
    const b = ctx.input(1);
    const c = ctx.optional(2);
    if (a.rank !== 2 || b.rank !== 2) return ctx.fail(`Gemm needs 2-D A and B, got ranks ${a.rank} and ${b.rank}`);
    const transA = ctx.node.int('transA', 0) !== 0;
    const transB = ctx.node.int('transB', 0) !== 0;
    const alpha = ctx.node.float('alpha', 1);
    const beta = ctx.node.float('beta', 1);
    const [m, k] = transA ? [a.dims[1], a.dims[0]] : a.dims;
    const [k2, n] = transB ? [b.dims[1], b.dims[0]] : b.dims;
    if (k !== k2) return ctx.fail(`Gemm inner dims differ: ${k} and ${k2}`);
    const av = numbers(a);
    const bv = numbers(b);
    // Element (i, p) of op(A) and (p, j) of op(B), whichever way they are stored.
    const aAt = transA ? (i: number, p: number) => av[p * m + i] : (i: number, p: number) => av[i * k + p];
    const bAt = transB ? (p: number, j: number) => bv[j * k + p] : (p: number, j: number) => bv[p * n + j];
    const out = new Float64Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += aAt(i, p) * bAt(p, j);
        out[i * n + j] = alpha * s;
      }
    }
    // As in the ONNX reference, a zero beta drops C entirely (so an inf in C cannot make NaN).
    if (c && beta !== 0) {
      const dims = broadcastDims(ctx, [m, n], c.dims);
      if (dims.length !== 2 || dims[0] !== m || dims[1] !== n) return ctx.fail(`Gemm C [${c.dims}] does not broadcast to [${m},${n}]`);
      const cv = numbers(c);
      const map = broadcastIndices(c.dims, [m, n]);
      for (let i = 0; i < m * n; i++) out[i] += beta * cv[map[i]];
    }
    return [fromNumbers(a.dtype, [m, n], out)];
  },
};

// ---------------------------------------------------------------- MatMulInteger / QLinearMatMul

/**
 * Dims under which a quantization parameter broadcasts against its matrix. A vector of several
 * entries is per row of A ([M] → [M, 1]); per column of B ([N]) already broadcasts as is.
 */
function paramDims(param: Tensor, perRow: boolean): readonly number[] {
  if (param.size === 1) return [];
  return perRow && param.rank === 1 ? [param.size, 1] : param.dims;
}

/** The elements of a quantized matrix with its zero point subtracted (exact integers). */
function centered(ctx: KernelContext, x: Tensor, zeroPoint: Tensor | undefined, perRow: boolean): Float64Array {
  const xv = numbers(x);
  const out = Float64Array.from(xv);
  if (!zeroPoint) return out;
  const zDims = paramDims(zeroPoint, perRow);
  const dims = broadcastDims(ctx, x.dims, zDims);
  if (dims.length !== x.rank || dims.some((d, i) => d !== x.dims[i]))
    return ctx.fail(`zero point [${zeroPoint.dims}] does not fit operand [${x.dims}]`);
  const zv = numbers(zeroPoint);
  const map = broadcastIndices(zDims, x.dims);
  for (let i = 0; i < out.length; i++) out[i] -= zv[map[i]];
  return out;
}

const matmulInteger: OpSchema = {
  op: 'MatMulInteger',
  infer: (ctx) => matmulInfer(ctx, 'int32'),
  kernel(ctx) {
    const a = ctx.input(0);
    const b = ctx.input(1);
    const av = centered(ctx, a, ctx.optional(2), true);
    const bv = centered(ctx, b, ctx.optional(3), false);
    const r = matmulValues(ctx, av, a.dims, bv, b.dims);
    return [fromNumbers('int32', r.dims, r.values)];
  },
};

/** Per-output-element values of a quantization parameter of A (per row) or B (per column) or Y. */
function outputParam(ctx: KernelContext, param: Tensor, perRow: boolean, outDims: readonly number[]): (i: number) => number {
  const v = numbers(param);
  if (param.size === 1) return () => v[0];
  const dims = paramDims(param, perRow);
  const full = broadcastDims(ctx, outDims, dims);
  if (full.length !== outDims.length || full.some((d, i) => d !== outDims[i]))
    return ctx.fail(`quantization parameter [${param.dims}] does not fit output [${outDims}]`);
  const map = broadcastIndices(dims, outDims);
  return (i) => v[map[i]];
}

const qlinearMatmul: OpSchema = {
  op: 'QLinearMatMul',
  infer: (ctx) => matmulInfer(ctx, ctx.dtype(7), 0, 3),
  kernel(ctx) {
    const a = ctx.input(0);
    const b = ctx.input(3);
    const yZero = ctx.input(7);
    const range = isInteger(yZero.dtype) ? valueRange(yZero.dtype) : undefined;
    if (!range) return ctx.fail(`QLinearMatMul output type ${yZero.dtype} is not supported by the reference kernel`);
    const av = centered(ctx, a, ctx.optional(2), true);
    const bv = centered(ctx, b, ctx.optional(5), false);
    const r = matmulValues(ctx, av, a.dims, bv, b.dims);
    const aScale = outputParam(ctx, ctx.input(1), true, r.dims);
    const bScale = outputParam(ctx, ctx.input(4), false, r.dims);
    const yScale = outputParam(ctx, ctx.input(6), false, r.dims);
    const yZp = outputParam(ctx, yZero, false, r.dims);
    const out = r.values.map((acc, i) => {
      // The combined scale is a float32 quantity (as the reference computes it); the product
      // with the int32 accumulator is not.
      const scale = f32(f32(aScale(i) * bScale(i)) / yScale(i));
      const q = roundHalfEven(acc * scale + yZp(i));
      return Math.min(range[1], Math.max(range[0], q));
    });
    return [fromNumbers(yZero.dtype, r.dims, out)];
  },
};

// ---------------------------------------------------------------- Einsum

/** An equation with "..." expanded to per-axis labels ".0", ".1", … (right-aligned across operands). */
interface Einsum {
  inputs: string[][];
  output: string[];
}

/** Splits one term into labels, "..." kept as one token. */
function termLabels(ctx: InferContext | KernelContext, term: string): string[] {
  const labels: string[] = [];
  for (let i = 0; i < term.length; i++) {
    if (term.startsWith('...', i)) {
      if (labels.includes('...')) ctx.fail(`Einsum term "${term}" has more than one ellipsis`);
      labels.push('...');
      i += 2;
    } else if (/[A-Za-z]/.test(term[i])) {
      labels.push(term[i]);
    } else {
      ctx.fail(`Einsum term "${term}" has an invalid character "${term[i]}"`);
    }
  }
  return labels;
}

/**
 * Parses an equation against the operand ranks. Implicit output: the labels that occur once, in
 * alphabetical (character code) order, after the ellipsis dims.
 */
function parseEinsum(ctx: InferContext | KernelContext, equation: string, ranks: readonly number[]): Einsum {
  const eq = equation.replace(/\s/g, '');
  const arrow = eq.indexOf('->');
  const lhs = arrow >= 0 ? eq.slice(0, arrow) : eq;
  const terms = lhs.split(',').map((t) => termLabels(ctx, t));
  if (terms.length !== ranks.length) ctx.fail(`Einsum equation has ${terms.length} operands but the node has ${ranks.length}`);
  // How many dims each ellipsis stands for; all of them share the trailing positions.
  const ellipsisRanks = terms.map((t, i) => {
    const explicit = t.filter((l) => l !== '...').length;
    const e = ranks[i] - explicit;
    if (e < 0 || (e > 0 && !t.includes('...'))) ctx.fail(`Einsum term ${i} has ${explicit} labels for rank ${ranks[i]}`);
    return e;
  });
  const ellipsisRank = Math.max(0, ...ellipsisRanks);
  const expand = (t: string[], e: number): string[] =>
    t.flatMap((l) => (l === '...' ? Array.from({ length: e }, (_, j) => `.${ellipsisRank - e + j}`) : [l]));
  const inputs = terms.map((t, i) => expand(t, ellipsisRanks[i]));
  let output: string[];
  if (arrow >= 0) {
    const out = termLabels(ctx, eq.slice(arrow + 2));
    output = expand(out, ellipsisRank);
    const seen = new Set(inputs.flat());
    for (const l of out) {
      if (l !== '...' && !seen.has(l)) ctx.fail(`Einsum output label "${l}" is not in any input`);
    }
    if (new Set(out).size !== out.length) ctx.fail('Einsum output repeats a label');
    // As in numpy, dims matched by "..." cannot be summed away silently.
    if (ellipsisRank > 0 && !out.includes('...')) ctx.fail('Einsum output has no "..." for the ellipsis dims of its inputs');
  } else {
    const counts = new Map<string, number>();
    for (const t of terms) for (const l of t) if (l !== '...') counts.set(l, (counts.get(l) ?? 0) + 1);
    const once = [...counts.keys()].filter((l) => counts.get(l) === 1).sort();
    output = [...Array.from({ length: ellipsisRank }, (_, j) => `.${j}`), ...once];
  }
  return { inputs, output };
}

/** Joins two sizes of one label: equal, or 1 broadcasting against the other. */
function joinDim(ctx: InferContext, label: string, a: Dim | undefined, b: Dim): Dim {
  if (a === undefined || a === 1) return b;
  if (b === 1) return a;
  if (typeof a === 'number' && typeof b === 'number') {
    if (a !== b) ctx.fail(`Einsum label "${label}" has sizes ${a} and ${b}`);
    return a;
  }
  if (typeof a === 'number') return a;
  if (typeof b === 'number') return b;
  return a !== null && b !== null && dimEquals(a, b) ? a : null;
}

const einsum: OpSchema = {
  op: 'Einsum',
  attrs: { equation: 'string' },
  infer(ctx) {
    const dtype = ctx.dtype(0);
    const shapes: Shape[] = [];
    for (let i = 0; i < ctx.numInputs; i++) {
      const s = ctx.shape(i);
      if (!s) return ctx.output(0, dtype, undefined);
      shapes.push(s);
    }
    const spec = parseEinsum(
      ctx,
      ctx.node.str('equation', ''),
      shapes.map((s) => s.length),
    );
    const sizes = new Map<string, Dim>();
    spec.inputs.forEach((labels, i) => {
      labels.forEach((l, j) => {
        sizes.set(l, joinDim(ctx, l, sizes.get(l), shapes[i][j]));
      });
    });
    ctx.output(
      0,
      dtype,
      spec.output.map((l) => sizes.get(l) ?? null),
    );
  },
  kernel(ctx) {
    const inputs: Tensor[] = [];
    for (let i = 0; i < ctx.numInputs; i++) inputs.push(ctx.input(i));
    const spec = parseEinsum(
      ctx,
      ctx.node.str('equation', ''),
      inputs.map((t) => t.rank),
    );
    const sizes = new Map<string, number>();
    spec.inputs.forEach((labels, i) => {
      labels.forEach((l, j) => {
        const prev = sizes.get(l);
        const d = inputs[i].dims[j];
        if (prev !== undefined && prev !== d && prev !== 1 && d !== 1) ctx.fail(`Einsum label "${l}" has sizes ${prev} and ${d}`);
        sizes.set(l, prev === undefined || prev === 1 ? d : prev);
      });
    });
    // Loop over the output labels, then the summed ones; each operand steps by the sum of its
    // strides over every position carrying the label (a repeated label walks the diagonal), and
    // not at all along a broadcast size-1 dim.
    const summed = [...sizes.keys()].filter((l) => !spec.output.includes(l));
    const loop = [...spec.output, ...summed];
    const loopDims = loop.map((l) => sizes.get(l) as number);
    const steps = inputs.map((t, i) => {
      const st = strides(t.dims);
      return loop.map((l) => spec.inputs[i].reduce((acc, label, j) => (label === l && t.dims[j] !== 1 ? acc + st[j] : acc), 0));
    });
    const values = inputs.map((t) => numbers(t));
    const outDims = spec.output.map((l) => sizes.get(l) as number);
    const inner = shapeSize(loopDims.slice(spec.output.length));
    const out = new Float64Array(shapeSize(outDims));
    const total = out.length * inner;
    const counter = new Array<number>(loop.length).fill(0);
    const pos = new Array<number>(inputs.length).fill(0);
    for (let i = 0; i < total; i++) {
      let prod = 1;
      for (let k = 0; k < inputs.length; k++) prod *= values[k][pos[k]];
      out[Math.floor(i / inner)] += prod;
      for (let d = loop.length - 1; d >= 0; d--) {
        counter[d]++;
        for (let k = 0; k < inputs.length; k++) pos[k] += steps[k][d];
        if (counter[d] < loopDims[d]) break;
        for (let k = 0; k < inputs.length; k++) pos[k] -= steps[k][d] * counter[d];
        counter[d] = 0;
      }
    }
    return [fromNumbers(inputs[0].dtype, outDims, out)];
  },
};

// ---------------------------------------------------------------- Det

/** Determinant by Gaussian elimination with partial pivoting. */
function determinant(m: Float64Array, n: number): number {
  let det = 1;
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[pivot * n + c])) pivot = r;
    const p = m[pivot * n + c];
    if (p === 0) return 0;
    if (pivot !== c) {
      for (let j = 0; j < n; j++) [m[c * n + j], m[pivot * n + j]] = [m[pivot * n + j], m[c * n + j]];
      det = -det;
    }
    det *= p;
    for (let r = c + 1; r < n; r++) {
      const f = m[r * n + c] / p;
      if (f === 0) continue;
      for (let j = c; j < n; j++) m[r * n + j] -= f * m[c * n + j];
    }
  }
  return det;
}

const det: OpSchema = {
  op: 'Det',
  infer(ctx) {
    const shape = ctx.shape(0);
    if (!shape) return ctx.output(0, ctx.dtype(0), undefined);
    if (shape.length < 2) return ctx.fail(`Det needs rank at least 2, got ${shape.length}`);
    const [r, c] = shape.slice(-2);
    if (typeof r === 'number' && typeof c === 'number' && r !== c) ctx.fail(`Det needs square matrices, got ${r}x${c}`);
    ctx.output(0, ctx.dtype(0), shape.slice(0, -2));
  },
  kernel(ctx) {
    const x = ctx.input(0);
    if (x.rank < 2) return ctx.fail(`Det needs rank at least 2, got ${x.rank}`);
    const [r, c] = x.dims.slice(-2);
    if (r !== c) return ctx.fail(`Det needs square matrices, got ${r}x${c}`);
    const v = numbers(x);
    const dims = x.dims.slice(0, -2);
    const count = shapeSize(dims);
    const out = new Float64Array(count);
    for (let t = 0; t < count; t++)
      out[t] = determinant(
        Float64Array.from({ length: r * r }, (_, i) => v[t * r * r + i]),
        r,
      );
    return [fromNumbers(x.dtype, dims, out)];
  },
};

// ---------------------------------------------------------------- gradients

/** `v` with its last two axes swapped. */
function swapLast(c: GradContext, v: Value, rank: number): Value {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return c.op('Transpose', [v], { perm });
}

/**
 * MatMul: dA = dY·Bᵀ and dB = Aᵀ·dY, summed over the batch dims each operand was broadcast
 * along; a 1-D operand is a row (A) or a column (B) whose added axis is dropped again. 2-D
 * operands go through Gemm's transpose flags, and a 2-D B under a batched A through one Gemm
 * over the flattened batch, so no Transpose or batched intermediate is made for them.
 */
const matmulGrad: GradRule = fromOutput0((c, dy) => {
  const a = c.input(0);
  const b = c.input(1);
  const as = c.shape(a);
  const bs = c.shape(b);
  const ys = c.shape(c.output(0));
  const ra = as.length;
  const rb = bs.length;
  if (ra === 1 && rb === 1) {
    if (c.needs(0)) c.setGrad(0, c.op('Mul', [dy, b]));
    if (c.needs(1)) c.setGrad(1, c.op('Mul', [dy, a]));
    return;
  }
  if (ra === 1) {
    // y[…, n] = Σ_k a[k]·b[…, k, n].
    if (c.needs(0)) {
      const g = c.op('MatMul', [c.op('Unsqueeze', [dy, c.ints([-2])]), swapLast(c, b, rb)]);
      c.setGrad(0, c.sumTo(g, [...ys.slice(0, -1), 1, as[0]], a));
    }
    if (c.needs(1)) c.setGrad(1, c.op('MatMul', [c.op('Unsqueeze', [a, c.ints([-1])]), c.op('Unsqueeze', [dy, c.ints([-2])])]));
    return;
  }
  if (rb === 1) {
    // y[…, m] = Σ_k a[…, m, k]·b[k].
    if (c.needs(0)) c.setGrad(0, c.op('Mul', [c.op('Unsqueeze', [dy, c.ints([-1])]), b]));
    if (c.needs(1)) {
      const g = c.op('Squeeze', [c.op('MatMul', [swapLast(c, a, ra), c.op('Unsqueeze', [dy, c.ints([-1])])]), c.ints([-1])]);
      c.setGrad(1, c.sumTo(g, [...ys.slice(0, -1), bs[0]], b));
    }
    return;
  }
  if (ra === 2 && rb === 2) {
    if (c.needs(0)) c.setGrad(0, c.op('Gemm', [dy, b], { transB: 1 }));
    if (c.needs(1)) c.setGrad(1, c.op('Gemm', [a, dy], { transA: 1 }));
    return;
  }
  const batch = ys.slice(0, -2);
  if (c.needs(0)) {
    const g = c.op('MatMul', [dy, swapLast(c, b, rb)]);
    c.setGrad(0, c.sumTo(g, [...batch, as[ra - 2], as[ra - 1]], a));
  }
  if (c.needs(1)) {
    if (rb === 2) {
      const [k, n] = c.staticShape(b, 'the gradient of a batched MatMul with 2-D weights');
      const flatA = c.op('Reshape', [a, c.ints([-1, k])]);
      const flatDy = c.op('Reshape', [dy, c.ints([-1, n])]);
      c.setGrad(1, c.op('Gemm', [flatA, flatDy], { transA: 1 }));
    } else {
      const g = c.op('MatMul', [swapLast(c, a, ra), dy]);
      c.setGrad(1, c.sumTo(g, [...batch, bs[rb - 2], bs[rb - 1]], b));
    }
  }
});

/**
 * Gemm: y = α·op(A)·op(B) + β·C. Each gradient is one Gemm whose transpose flags absorb the
 * forward ones; C's is β·dY summed over the axes it was broadcast along.
 */
const gemmGrad: GradRule = fromOutput0((c, dy) => {
  const a = c.input(0);
  const b = c.input(1);
  const transA = c.node.int('transA', 0) !== 0;
  const transB = c.node.int('transB', 0) !== 0;
  const alpha = c.node.float('alpha', 1);
  const beta = c.node.float('beta', 1);
  const scaled: Record<string, AttrInput> = alpha === 1 ? {} : { alpha };
  if (c.needs(0)) {
    c.setGrad(
      0,
      transA
        ? c.op('Gemm', [b, dy], { transA: transB ? 1 : 0, transB: 1, ...scaled })
        : c.op('Gemm', [dy, b], { transB: transB ? 0 : 1, ...scaled }),
    );
  }
  if (c.needs(1)) {
    c.setGrad(
      1,
      transB
        ? c.op('Gemm', [dy, a], { transA: 1, transB: transA ? 1 : 0, ...scaled })
        : c.op('Gemm', [a, dy], { transA: transA ? 0 : 1, ...scaled }),
    );
  }
  if (c.needs(2)) {
    const g = beta === 1 ? dy : c.op('Mul', [dy, c.scalar(beta, c.dtype(c.output(0)))]);
    c.setGrad(2, c.sumTo(g, c.shape(c.output(0)), c.input(2)));
  }
});

export const LINALG_OPS: OpSchema[] = withGradients([matmul, gemm, matmulInteger, qlinearMatmul, einsum, det], {
  MatMul: matmulGrad,
  Gemm: gemmGrad,
});
