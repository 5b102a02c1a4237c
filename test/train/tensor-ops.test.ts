/**
 * Gradient rules of the data-movement, reduction, softmax and matrix ops, checked by finite
 * differences on onnxruntime (float64).
 */
import { after, describe, it } from 'node:test';
import type { ModelBuilder } from '../../src/ir/builder.js';
import type { Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { distinct, expectGradient, type FloatType, RESULTS } from './gradcheck.js';

after(() => {
  for (const r of RESULTS) console.log(`# ${r.name.padEnd(40)} ${r.dtype}  worst ${r.worst.toExponential(2)}`);
});

/** x of `shape` through `f`, then a Mul by a constant pattern so a wrong layout of dX shows. */
const through = (shape: number[], f: (b: ModelBuilder, x: Value) => Value | Value[]) => (b: ModelBuilder, t: FloatType) =>
  f(b, b.input('x', t, shape));

describe('gradients: shape and layout ops', () => {
  it('Reshape, Flatten, Squeeze, Unsqueeze, Identity, Transpose', async () => {
    await expectGradient('Reshape', { build: through([2, 3, 4], (b, x) => b.op('Reshape', [x, b.ints('s', [4, -1])])) });
    await expectGradient('Flatten axis 2', { build: through([2, 3, 4], (b, x) => b.op('Flatten', [x], { axis: 2 })) });
    await expectGradient('Squeeze', { build: through([2, 1, 3, 1], (b, x) => b.op('Squeeze', [x, b.ints('a', [1, -1])])) });
    await expectGradient('Squeeze (all 1s)', { build: through([2, 1, 3, 1], (b, x) => b.op('Squeeze', [x])) });
    await expectGradient('Unsqueeze', { build: through([2, 3], (b, x) => b.op('Unsqueeze', [x, b.ints('a', [0, 3])])) });
    await expectGradient('Identity', { build: through([2, 3], (b, x) => b.op('Identity', [x])) });
    await expectGradient('Transpose', { build: through([2, 3, 4], (b, x) => b.op('Transpose', [x], { perm: [1, 2, 0] })) });
    await expectGradient('Transpose (default)', { build: through([2, 3, 4], (b, x) => b.op('Transpose', [x])) });
  });

  it('Concat (the same input twice too) and Split', async () => {
    await expectGradient('Concat axis 1', {
      build: (b, t) => b.op('Concat', [b.input('a', t, [2, 3, 2]), b.input('b', t, [2, 1, 2]), b.input('c', t, [2, 2, 2])], { axis: 1 }),
    });
    await expectGradient('Concat(x, x) axis -1', { build: through([2, 3], (b, x) => b.op('Concat', [x, x], { axis: -1 })) });
    await expectGradient('Split uneven', {
      build: through([2, 6], (b, x) => b.opMulti('Split', [x, b.ints('s', [1, 3, 2])], { axis: 1 }, { outputs: 3 })),
    });
    await expectGradient('Split, one part unused', {
      build: through([4, 3], (b, x) => b.opMulti('Split', [x, b.ints('s', [2, 2])], { axis: 0 }, { outputs: 2 })[1]),
    });
  });

  it('Slice: unit steps, strides, negative steps, clamped ends', async () => {
    const slice = (starts: number[], ends: number[], axes: number[], steps?: number[]) =>
      through([5, 6, 4], (b, x) =>
        b.op('Slice', [x, b.ints('st', starts), b.ints('en', ends), b.ints('ax', axes), ...(steps ? [b.ints('sp', steps)] : [])]),
      );
    await expectGradient('Slice unit steps', { build: slice([1, 2], [4, -1], [0, 1]) });
    await expectGradient('Slice step 2', { build: slice([0, 1], [5, 6], [0, 1], [2, 3]) });
    await expectGradient('Slice negative step', { build: slice([4, -1], [0, 0], [0, 2], [-2, -1]) });
    await expectGradient('Slice clamped end', { build: slice([2], [1000], [1]) });
  });

  it('Gather along axis 0, axis 1, with 2-D and repeated indices', async () => {
    const idx = (b: ModelBuilder, dims: number[], v: number[]) => b.constant('i', Tensor.from('int64', dims, v));
    await expectGradient('Gather axis 0 (repeats)', { build: through([4, 3], (b, x) => b.op('Gather', [x, idx(b, [3], [2, 0, 2])])) });
    await expectGradient('Gather axis 1, 2-D indices', {
      build: through([2, 5, 3], (b, x) => b.op('Gather', [x, idx(b, [2, 2], [4, 1, -1, 0])], { axis: 1 })),
    });
    await expectGradient('Gather scalar index', { build: through([3, 4], (b, x) => b.op('Gather', [x, idx(b, [], [2])], { axis: 1 })) });
  });

  it('Expand, Tile, Pad, DepthToSpace, SpaceToDepth', async () => {
    await expectGradient('Expand', { build: through([3, 1], (b, x) => b.op('Expand', [x, b.ints('s', [2, 3, 4])])) });
    await expectGradient('Tile', { build: through([2, 3], (b, x) => b.op('Tile', [x, b.ints('r', [2, 3])])) });
    await expectGradient('Pad (negative too)', { build: through([3, 4], (b, x) => b.op('Pad', [x, b.ints('p', [1, -1, 2, 1])])) });
    await expectGradient('DepthToSpace', { build: through([1, 8, 2, 3], (b, x) => b.op('DepthToSpace', [x], { blocksize: 2 })) });
    await expectGradient('SpaceToDepth', { build: through([1, 2, 4, 6], (b, x) => b.op('SpaceToDepth', [x], { blocksize: 2 })) });
  });
});

describe('gradients: reductions and softmax', () => {
  const reduce = (op: string, axes: number[] | undefined, keepdims: number, inputAxes = op === 'ReduceSum') =>
    through([2, 3, 4], (b, x) => {
      if (!axes) return b.op(op, [x], { keepdims });
      return inputAxes ? b.op(op, [x, b.ints('a', axes)], { keepdims }) : b.op(op, [x], { axes, keepdims });
    });
  for (const op of ['ReduceSum', 'ReduceMean', 'ReduceSumSquare', 'ReduceL2', 'ReduceLogSumExp', 'ReduceL1', 'ReduceLogSum']) {
    it(op, async () => {
      const values =
        op === 'ReduceLogSum' || op === 'ReduceL1' ? { x: (r: import('../../src/util/random.js').Random) => 0.5 + r.next() } : undefined;
      await expectGradient(`${op} axes [1] keepdims`, { build: reduce(op, [1], 1), values });
      await expectGradient(`${op} axes [0,-1]`, { build: reduce(op, [0, -1], 0), values });
      await expectGradient(`${op} all`, { build: reduce(op, undefined, 0), values });
    });
  }
  it('ReduceMax, ReduceMin', async () => {
    for (const op of ['ReduceMax', 'ReduceMin']) {
      await expectGradient(`${op} axes [2]`, { build: reduce(op, [2], 0), values: { x: distinct(0.1) } });
    }
  });
  it('ReduceMean at opset 18 (axes as an input)', async () => {
    await expectGradient('ReduceMean opset 18', { opset: 18, build: reduce('ReduceMean', [0, 2], 1, true) });
  });

  it('Softmax and LogSoftmax along each axis', async () => {
    for (const op of ['Softmax', 'LogSoftmax']) {
      for (const axis of [-1, 1, 0]) {
        await expectGradient(`${op} axis ${axis}`, { build: through([2, 3, 4], (b, x) => b.op(op, [x], { axis })) });
      }
    }
  });
});

describe('gradients: MatMul and Gemm', () => {
  const matmul = (a: number[], c: number[]) => (b: ModelBuilder, t: FloatType) => b.op('MatMul', [b.input('a', t, a), b.input('b', t, c)]);
  const shapes: Array<[number[], number[]]> = [
    [
      [3, 4],
      [4, 5],
    ],
    [
      [2, 3, 4],
      [4, 5],
    ],
    [
      [2, 3, 4],
      [2, 4, 5],
    ],
    [
      [2, 1, 3, 4],
      [3, 4, 2],
    ],
    [[4], [4, 5]],
    [[2, 4], [4]],
    [[4], [4]],
    [[4], [2, 4, 3]],
    [[2, 3, 4], [4]],
  ];
  for (const [a, c] of shapes) {
    it(`MatMul [${a}] × [${c}]`, async () => {
      await expectGradient(`MatMul [${a}]×[${c}]`, { build: matmul(a, c) });
    });
  }

  for (const [transA, transB] of [
    [0, 0],
    [1, 0],
    [0, 1],
    [1, 1],
  ]) {
    it(`Gemm transA=${transA} transB=${transB}, alpha, beta, C broadcast`, async () => {
      const a = transA ? [4, 3] : [3, 4];
      const bb = transB ? [5, 4] : [4, 5];
      for (const cShape of [[5], [3, 1], [3, 5], []]) {
        await expectGradient(`Gemm tA=${transA} tB=${transB} C[${cShape}]`, {
          build: (b, t) =>
            b.op('Gemm', [b.input('a', t, a), b.input('b', t, bb), b.input('c', t, cShape)], { transA, transB, alpha: 0.7, beta: 1.3 }),
        });
      }
    });
  }
  it('Gemm without C', async () => {
    await expectGradient('Gemm no C', { build: (b, t) => b.op('Gemm', [b.input('a', t, [3, 4]), b.input('b', t, [5, 4])], { transB: 1 }) });
  });
});
