/**
 * The opset upgrader's tricky rewrites, checked on small models: where onnxruntime runs the
 * original (opset ≥ 7) both are run and must agree; below that the expected values are computed
 * here. The structure of the rewrite is checked too, so a test cannot pass by leaving a node alone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isMobilizeError } from '../../src/errors.js';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { saveModel } from '../../src/io/files.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Graph, Model, type Node } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { upgradeOpset } from '../../src/ir/upgrade/index.js';
import { verifyModel } from '../../src/ir/verify.js';
import { defaultRegistry } from '../../src/ops/index.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { Interpreter } from '../../src/runtime/reference.js';
import { maxAbsDiff, ROOT, tmpDir } from '../helpers.js';

/** Deterministic values in [-1, 1). */
function values(dims: number[], seed = 7): Tensor {
  let s = seed;
  const n = dims.reduce((a, b) => a * b, 1);
  return Tensor.from(
    'float32',
    dims,
    Float32Array.from({ length: n }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return (2 * s) / 2147483648 - 1;
    }),
  );
}

/** A copy of a model (through its ONNX bytes), to upgrade one and keep the other. */
function copy(m: Model): Model {
  return readOnnx(writeOnnx(m).model);
}

async function runOrt(m: Model, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const s = await nodeBackend().createSession(m);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

/** Upgrades a copy of `m` to `target`, checks it is valid and at that opset, and returns it. */
function upgraded(m: Model, target: number): Model {
  const u = copy(m);
  upgradeOpset(u, target);
  assert.deepEqual(verifyModel(u, { registry: defaultRegistry() }), []);
  assert.equal(u.opset(''), target);
  return u;
}

/** Runs original and upgraded on onnxruntime and requires the same outputs. */
async function sameOnOrt(original: Model, target: number, feeds: Record<string, Tensor>): Promise<Model> {
  const u = upgraded(original, target);
  const a = await runOrt(original, feeds);
  const b = await runOrt(u, feeds);
  for (const name of Object.keys(a)) {
    assert.deepEqual(b[name].dims, a[name].dims, `${name} shape`);
    assert.ok(maxAbsDiff(a[name], b[name]) < 1e-6, `${name} differs by ${maxAbsDiff(a[name], b[name])}`);
  }
  return u;
}

const ops = (m: Model): string[] => m.graph.nodes.map((n) => n.opType);
const node = (m: Model, op: string): Node => m.graph.nodes.find((n) => n.opType === op) ?? assert.fail(`no ${op} node`);

function refuses(f: () => unknown, pattern: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(isMobilizeError(e), `not a MobilizeError: ${e}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

describe('upgradeOpset: Softmax family at 13', () => {
  for (const op of ['Softmax', 'LogSoftmax', 'Hardmax']) {
    it(`${op} with axis before the last is wrapped in Flatten … Reshape`, async () => {
      const b = new ModelBuilder({ opset: 11 });
      const x = b.input('x', 'float32', [2, 3, 4]);
      b.output(b.op(op, [x], { axis: 1 }), 'y');
      const m = b.build();
      const u = await sameOnOrt(m, 13, { x: values([2, 3, 4]) });
      assert.deepEqual(ops(u), ['Shape', 'Flatten', op, 'Reshape']);
      assert.equal(node(u, 'Flatten').int('axis'), 1);
      assert.equal(node(u, op).int('axis'), 1);
      // The reference interpreter agrees on both sides too (it knows both definitions).
      const feeds = [values([2, 3, 4])];
      const ref = new Interpreter(m).runGraph(m.graph, feeds)[0];
      assert.ok(maxAbsDiff(ref, new Interpreter(u).runGraph(u.graph, feeds)[0]) < 1e-6);
    });
  }

  it('keeps a single node when the axis is the last one (default axis 1 on rank 2)', async () => {
    const b = new ModelBuilder({ opset: 11 });
    const x = b.input('x', 'float32', [3, 5]);
    b.output(b.op('Softmax', [x]), 'y');
    const u = await sameOnOrt(b.build(), 13, { x: values([3, 5]) });
    assert.deepEqual(ops(u), ['Softmax']);
    assert.equal(node(u, 'Softmax').int('axis'), 1);
  });

  it('keeps a single node when only size-1 dims follow the axis', async () => {
    const b = new ModelBuilder({ opset: 11 });
    const x = b.input('x', 'float32', [2, 5, 1, 1]);
    b.output(b.op('Softmax', [x], { axis: 1 }), 'y');
    const u = await sameOnOrt(b.build(), 21, { x: values([2, 5, 1, 1]) });
    assert.deepEqual(ops(u), ['Softmax']);
  });

  it('a negative axis counts from the end, as before', async () => {
    const b = new ModelBuilder({ opset: 11 });
    const x = b.input('x', 'float32', [2, 3, 4]);
    b.output(b.op('Softmax', [x], { axis: -2 }), 'y');
    const u = await sameOnOrt(b.build(), 13, { x: values([2, 3, 4]) });
    assert.deepEqual(ops(u), ['Shape', 'Flatten', 'Softmax', 'Reshape']);
  });

  it('with an unknown rank the Flatten form is used (it is right for any rank)', async () => {
    const b = new ModelBuilder({ opset: 11 });
    const x = b.input('x', 'float32', ['a', 'b', 'c']);
    const y = b.op('Softmax', [b.op('Relu', [x])], { axis: 1 });
    b.output(y, 'y', { kind: 'tensor', dtype: 'float32', shape: ['a', 'b', 'c'] });
    const m = b.build();
    // Forget what inference learned: nothing is known about Relu's output.
    node(m, 'Relu').output().type = undefined;
    m.graph.inputs[0].type = { kind: 'tensor', dtype: 'float32' };
    const u = await sameOnOrt(m, 13, { x: values([2, 3, 4]) });
    assert.deepEqual(ops(u), ['Relu', 'Shape', 'Flatten', 'Softmax', 'Reshape']);
  });

  it('the graph output keeps its name and type', () => {
    const b = new ModelBuilder({ opset: 6 });
    const x = b.input('x', 'float32', [2, 3, 4]);
    b.output(b.op('Softmax', [x], { axis: 0 }), 'probs');
    const u = upgraded(b.build(), 21);
    assert.equal(u.graph.outputs[0].name, 'probs');
    assert.equal(u.graph.outputs[0].producer?.opType, 'Reshape');
    assert.deepEqual(u.graph.outputs[0].type, { kind: 'tensor', dtype: 'float32', shape: [2, 3, 4] });
  });
});

describe('upgradeOpset: the old broadcast attributes (opset < 7)', () => {
  const a = values([2, 3, 4, 5], 1);
  const bv = values([3, 4], 2);
  /** A + B with B [3, 4] aligned at axis 1 of A [2, 3, 4, 5]. */
  const expected = (): number[] => {
    const av = a.toNumbers();
    const b = bv.toNumbers();
    return av.map((v, i) => v + b[Math.floor(i / 5) % 12]);
  };

  function model(bConstant: boolean): Model {
    const b = new ModelBuilder({ opset: 6 });
    const x = b.input('a', 'float32', [2, 3, 4, 5]);
    const y = bConstant ? b.constant('b', bv) : b.input('b', 'float32', [3, 4]);
    b.output(b.op('Add', [x, y], { broadcast: 1, axis: 1 }), 'c', { kind: 'tensor', dtype: 'float32', shape: [2, 3, 4, 5] });
    return b.build();
  }

  it('a constant operand is stored reshaped to [3, 4, 1]', async () => {
    const u = upgraded(model(true), 7);
    assert.deepEqual(ops(u), ['Add']);
    assert.equal(node(u, 'Add').attrs.size, 0);
    assert.deepEqual(node(u, 'Add').input(1)?.initializer?.dims, [3, 4, 1]);
    assert.equal(u.graph.initializers.length, 1, 'the [3, 4] original is gone');
    const got = (await runOrt(u, { a })).c.toNumbers();
    for (const [i, v] of expected().entries()) assert.ok(Math.abs(got[i] - v) < 1e-6);
  });

  it('a computed operand gets an Unsqueeze (axes as an input from opset 13)', async () => {
    const u7 = upgraded(model(false), 7);
    assert.deepEqual(node(u7, 'Unsqueeze').ints('axes'), [2]);
    const u = upgraded(model(false), 21);
    assert.deepEqual(ops(u), ['Unsqueeze', 'Add']);
    assert.deepEqual(node(u, 'Unsqueeze').input(1)?.initializer?.toNumbers(), [2]);
    for (const m of [u7, u]) {
      const got = (await runOrt(m, { a, b: bv })).c.toNumbers();
      for (const [i, v] of expected().entries()) assert.ok(Math.abs(got[i] - v) < 1e-6);
    }
  });

  it('suffix alignment (no axis) and broadcast=0 need nothing but dropping the attributes', () => {
    const b = new ModelBuilder({ opset: 6 });
    const x = b.input('a', 'float32', [2, 3]);
    const y = b.input('b', 'float32', [3]);
    const s = b.op('Mul', [x, y], { broadcast: 1 });
    b.output(b.op('Sub', [s, x], { broadcast: 0 }), 'c', { kind: 'tensor', dtype: 'float32', shape: [2, 3] });
    const u = upgraded(b.build(), 13);
    assert.deepEqual(ops(u), ['Mul', 'Sub']);
    assert.ok(u.graph.nodes.every((n) => n.attrs.size === 0));
  });

  it('refuses when the ranks it needs are unknown', () => {
    const b = new ModelBuilder({ opset: 6 });
    const x = b.input('a', 'float32', [2, 3]);
    const y = b.input('b', 'float32', [2]);
    b.output(b.op('Add', [x, y], { broadcast: 1, axis: 0 }, { name: 'add0' }), 'c', { kind: 'tensor', dtype: 'float32', shape: [2, 3] });
    const m = b.build();
    m.graph.inputs[1].type = { kind: 'tensor', dtype: 'float32' };
    refuses(() => upgradeOpset(m, 7), /Add node "add0".*opset 6 to 7.*Add-6 → Add-7.*rank of "b"/);
  });

  it('PRelu-6 slopes are per channel: [C] becomes [C, 1, 1]', async () => {
    const b = new ModelBuilder({ opset: 6 });
    const x = b.input('x', 'float32', [2, 3, 4, 5]);
    b.output(b.op('PRelu', [x, b.constant('slope', Tensor.from('float32', [3], [0.1, 0.2, 0.3]))]), 'y');
    const u = upgraded(b.build(), 9);
    assert.deepEqual(node(u, 'PRelu').input(1)?.initializer?.dims, [3, 1, 1]);
    const xv = values([2, 3, 4, 5]);
    const got = (await runOrt(u, { x: xv })).y.toNumbers();
    xv.toNumbers().forEach((v, i) => {
      const slope = [0.1, 0.2, 0.3][Math.floor(i / 20) % 3];
      assert.ok(Math.abs(got[i] - (v < 0 ? v * slope : v)) < 1e-6);
    });
  });
});

describe('upgradeOpset: Upsample and Resize-10 → Resize-11+', () => {
  async function check(scales: number[], op: 'Upsample' | 'Resize', opset: number, constant: boolean, mode = 'nearest'): Promise<Model> {
    const b = new ModelBuilder({ opset });
    const x = b.input('x', 'float32', [1, 2, 4, 6]);
    const s = constant ? b.floats('scales', [4], scales) : b.input('scales', 'float32', [4]);
    const outShape = [1, 2, 4, 6].map((d, i) => Math.floor(d * scales[i]));
    b.output(b.op(op, [x, s], { mode }), 'y', { kind: 'tensor', dtype: 'float32', shape: outShape });
    const feeds: Record<string, Tensor> = { x: values([1, 2, 4, 6]) };
    if (!constant) feeds.scales = Tensor.from('float32', [4], scales);
    return sameOnOrt(b.build(), 13, feeds);
  }

  it('upsampling by constant scales: one Resize, asymmetric, rounding down', async () => {
    const u = await check([1, 1, 2, 1.5], 'Upsample', 9, true);
    assert.deepEqual(ops(u), ['Resize']);
    const r = node(u, 'Resize');
    assert.equal(r.str('coordinate_transformation_mode'), 'asymmetric');
    assert.equal(r.str('nearest_mode'), 'floor');
    assert.equal(r.inputs.length, 3);
  });

  it('downsampling (Resize-10): rounding up, as Resize-10 did', async () => {
    const u = await check([1, 1, 0.5, 0.6], 'Resize', 10, true);
    assert.deepEqual(ops(u), ['Resize']);
    assert.equal(node(u, 'Resize').str('nearest_mode'), 'ceil');
  });

  it('scales both ways: one Resize per direction', async () => {
    const u = await check([1, 1, 2, 0.6], 'Resize', 10, true);
    assert.deepEqual(ops(u), ['Resize', 'Resize']);
    assert.deepEqual(
      u.graph.nodes.map((n) => n.str('nearest_mode')),
      ['floor', 'ceil'],
    );
  });

  it('scales known only at run time: Max/Min split them by direction', async () => {
    const u = await check([1, 1, 0.5, 3], 'Resize', 10, false);
    assert.deepEqual(ops(u), ['Max', 'Min', 'Resize', 'Resize']);
    // Upsample's scales are ≥ 1 by definition: one Resize that rounds down.
    const v = await check([1, 1, 2, 3], 'Upsample', 9, false);
    assert.deepEqual(ops(v), ['Resize']);
    assert.equal(node(v, 'Resize').str('nearest_mode'), 'floor');
    await check([1, 1, 0.75, 0.5], 'Resize', 10, false);
  });

  it('linear mode keeps the asymmetric coordinates', async () => {
    const u = await check([1, 1, 2, 2], 'Upsample', 9, true, 'linear');
    const r = node(u, 'Resize');
    assert.equal(r.str('mode'), 'linear');
    assert.equal(r.str('coordinate_transformation_mode'), 'asymmetric');
  });

  it('Upsample-7 (scales as an attribute) goes the whole way', async () => {
    const b = new ModelBuilder({ opset: 8 });
    const x = b.input('x', 'float32', [1, 1, 2, 3]);
    b.output(b.op('Upsample', [x], { scales: [1, 1, 2, 2], mode: 'nearest' }), 'y', {
      kind: 'tensor',
      dtype: 'float32',
      shape: [1, 1, 4, 6],
    });
    const u = await sameOnOrt(b.build(), 21, { x: values([1, 1, 2, 3]) });
    assert.deepEqual(ops(u), ['Resize']);
    assert.deepEqual(node(u, 'Resize').input(2)?.initializer?.toNumbers(), [1, 1, 2, 2]);
  });

  it('Resize-11 tf_half_pixel_for_nn becomes half_pixel with the matching rounding', async () => {
    for (const [nearest, mapped] of [
      ['round_prefer_floor', 'ceil'],
      ['floor', 'round_prefer_ceil'],
    ]) {
      const b = new ModelBuilder({ opset: 11 });
      const x = b.input('x', 'float32', [1, 1, 5, 7]);
      const roi = b.floats('roi', [0], []);
      const scales = b.floats('scales', [0], []);
      const sizes = b.ints('sizes', [1, 1, 8, 3]);
      const y = b.op('Resize', [x, roi, scales, sizes], {
        mode: 'nearest',
        coordinate_transformation_mode: 'tf_half_pixel_for_nn',
        nearest_mode: nearest,
      });
      b.output(y, 'y', { kind: 'tensor', dtype: 'float32', shape: [1, 1, 8, 3] });
      const u = await sameOnOrt(b.build(), 13, { x: values([1, 1, 5, 7]) });
      assert.equal(node(u, 'Resize').str('coordinate_transformation_mode'), 'half_pixel');
      assert.equal(node(u, 'Resize').str('nearest_mode'), mapped);
    }
  });
});

describe('upgradeOpset: attributes that became inputs', () => {
  it('Clip min/max become scalar inputs of the input type', async () => {
    const b = new ModelBuilder({ opset: 10 });
    const x = b.input('x', 'float32', [3, 4]);
    const c = b.op('Clip', [x], { min: -0.5, max: 0.25 });
    const d = b.op('Clip', [x], { max: 0.1 });
    b.output(c, 'c');
    b.output(d, 'd');
    const u = await sameOnOrt(b.build(), 11, { x: values([3, 4]) });
    const [first, second] = u.graph.nodes;
    assert.deepEqual(
      first.inputs.map((v) => v?.initializer?.toNumbers()),
      [undefined, [-0.5], [0.25]],
    );
    assert.equal(first.input(1)?.initializer?.rank, 0);
    assert.equal(second.input(1), null);
    assert.deepEqual(second.input(2)?.initializer?.toNumbers(), [0.1].map(Math.fround));
    assert.equal(first.attrs.size + second.attrs.size, 0);
  });

  it('Clip on float16 gets float16 bounds', async () => {
    const b = new ModelBuilder({ opset: 9 });
    const x = b.input('x', 'float16', [4]);
    b.output(b.op('Clip', [x], { min: 0, max: 1 }), 'y');
    const u = upgraded(b.build(), 21);
    assert.equal(node(u, 'Clip').input(1)?.initializer?.dtype, 'float16');
  });

  it('Squeeze, Unsqueeze, ReduceSum at 13 and ReduceMean at 18 take axes as an input', async () => {
    const b = new ModelBuilder({ opset: 12 });
    const x = b.input('x', 'float32', [2, 1, 3]);
    const s = b.op('Squeeze', [x], { axes: [1] });
    const un = b.op('Unsqueeze', [s], { axes: [0] });
    const r = b.op('ReduceSum', [un], { axes: [2], keepdims: 0 });
    b.output(b.op('ReduceMean', [r], { axes: [-1] }), 'y');
    const u = await sameOnOrt(b.build(), 18, { x: values([2, 1, 3]) });
    for (const n of u.graph.nodes) {
      assert.ok(!n.attrs.has('axes'), `${n.opType} still has axes`);
      assert.equal(n.input(1)?.initializer?.dtype, 'int64');
    }
  });

  it('Split at 13 takes split as an input, at 18 num_outputs when it has none', async () => {
    const b = new ModelBuilder({ opset: 12 });
    const x = b.input('x', 'float32', [6, 2]);
    const [p, q] = b.opMulti('Split', [x], { axis: 0, split: [2, 4] }, { outputs: 2 });
    const [r, s] = b.opMulti('Split', [x], { axis: 1 }, { outputs: 2 });
    for (const [v, n] of [
      [p, 'p'],
      [q, 'q'],
      [r, 'r'],
      [s, 's'],
    ] as const)
      b.output(v, n);
    const u = await sameOnOrt(b.build(), 18, { x: values([6, 2]) });
    const [first, second] = u.graph.nodes;
    assert.deepEqual(first.input(1)?.initializer?.toNumbers(), [2, 4]);
    assert.equal(second.int('num_outputs'), 2);
  });

  it('Pad-2 pads/value become inputs; Slice-1 and TopK-1 attributes too', async () => {
    const b = new ModelBuilder({ opset: 9 });
    const x = b.input('x', 'float32', [3, 4]);
    const p = b.op('Pad', [x], { pads: [0, 1, 1, 0], value: 2.5 });
    const sl = b.op('Slice', [p], { starts: [1], ends: [3], axes: [1] });
    const [vals, idx] = b.opMulti('TopK', [sl], { k: 2 }, { outputs: 2 });
    b.output(vals, 'v');
    b.output(idx, 'i');
    const u = await sameOnOrt(b.build(), 13, { x: values([3, 4]) });
    assert.deepEqual(
      node(u, 'Pad').inputs.map((v) => v?.initializer?.toNumbers()),
      [undefined, [0, 1, 1, 0], [2.5]],
    );
    assert.equal(node(u, 'Slice').inputs.length, 4);
    assert.deepEqual(node(u, 'TopK').input(1)?.initializer?.toNumbers(), [2]);
  });

  it('Dropout ratio becomes an input; a read mask of the old type gets a Cast', async () => {
    const b = new ModelBuilder({ opset: 9 });
    const x = b.input('x', 'float32', [2, 3]);
    const [y, mask] = b.opMulti('Dropout', [x], { ratio: 0.3 }, { outputs: 2 });
    b.output(y, 'y');
    b.output(mask, 'mask', { kind: 'tensor', dtype: 'float32', shape: [2, 3] });
    const m = b.build();
    const u = upgraded(m, 13);
    assert.deepEqual(ops(u), ['Dropout', 'Cast']);
    assert.equal(node(u, 'Cast').output().name, 'mask');
    const got = await runOrt(u, { x: values([2, 3]) });
    assert.deepEqual(got.mask.toNumbers(), [1, 1, 1, 1, 1, 1]);
    assert.equal(got.mask.dtype, 'float32');
  });
});

describe('upgradeOpset: other semantic changes', () => {
  it('BatchNormalization-6 in test mode loses is_test/spatial; at 14 nothing else changes', async () => {
    const b = new ModelBuilder({ opset: 6 });
    const x = b.input('x', 'float32', [2, 3, 4]);
    const p = (n: string, v: number[]) => b.floats(n, [3], v);
    const y = b.op('BatchNormalization', [x, p('s', [1, 2, 3]), p('b', [0, 1, 0]), p('m', [0.5, 0, -0.5]), p('v', [1, 4, 0.25])], {
      is_test: 1,
      spatial: 1,
      epsilon: 1e-5,
    });
    b.output(y, 'y', { kind: 'tensor', dtype: 'float32', shape: [2, 3, 4] });
    const u = upgraded(b.build(), 21);
    assert.deepEqual([...node(u, 'BatchNormalization').attrs.keys()], ['epsilon']);
    const xv = values([2, 3, 4]);
    const got = (await runOrt(u, { x: xv })).y.toNumbers();
    const [s, bias, mean, vr] = [
      [1, 2, 3],
      [0, 1, 0],
      [0.5, 0, -0.5],
      [1, 4, 0.25],
    ];
    xv.toNumbers().forEach((v, i) => {
      const c = Math.floor(i / 4) % 3;
      assert.ok(Math.abs(got[i] - ((v - mean[c]) / Math.sqrt(vr[c] + 1e-5)) * s[c] - bias[c]) < 1e-5);
    });
  });

  it('BatchNormalization-7 with spatial=0 is written out with per-activation parameters', async () => {
    const b = new ModelBuilder({ opset: 8 });
    const x = b.input('x', 'float32', [2, 3, 2]);
    const p = (n: string, seed: number) => b.constant(n, values([3, 2], seed));
    const v = b.constant('v', Tensor.from('float32', [3, 2], [1, 2, 3, 4, 5, 6]));
    const y = b.op('BatchNormalization', [x, p('s', 1), p('b', 2), p('m', 3), v], { spatial: 0 });
    b.output(y, 'y', { kind: 'tensor', dtype: 'float32', shape: [2, 3, 2] });
    const u = await sameOnOrt(b.build(), 9, { x: values([2, 3, 2]) });
    assert.ok(!ops(u).includes('BatchNormalization'));
  });

  it('GroupNormalization-18 per-group scale and bias become per channel', () => {
    for (const constant of [true, false]) {
      const b = new ModelBuilder({ opset: 18 });
      const x = b.input('x', 'float32', [2, 6, 3]);
      const scale = Tensor.from('float32', [3], [1, 2, 3]);
      const bias = Tensor.from('float32', [3], [0, -1, 1]);
      const s = constant ? b.constant('scale', scale) : b.input('scale', 'float32', [3]);
      const bb = constant ? b.constant('bias', bias) : b.input('bias', 'float32', [3]);
      b.output(b.op('GroupNormalization', [x, s, bb], { num_groups: 3, epsilon: 1e-5 }), 'y');
      const m = b.build();
      const u = upgraded(m, 21);
      const feeds = constant ? [values([2, 6, 3])] : [values([2, 6, 3]), scale, bias];
      const before = new Interpreter(m).runGraph(m.graph, feeds)[0];
      const after = new Interpreter(u).runGraph(u.graph, feeds)[0];
      assert.ok(maxAbsDiff(before, after) < 1e-6);
      if (constant) assert.deepEqual(node(u, 'GroupNormalization').input(1)?.initializer?.toNumbers(), [1, 1, 2, 2, 3, 3]);
    }
  });

  it('Scan-8 with a batch of one becomes Scan-9 between Squeeze and Unsqueeze', async () => {
    const body = new ModelBuilder({ opset: 8 });
    const acc = body.input('acc', 'float32', [2]);
    const xi = body.input('xi', 'float32', [2]);
    const sum = body.op('Add', [acc, xi]);
    body.output(sum, 'acc_out');
    body.output(body.op('Identity', [sum]), 'scan_out');
    const b = new ModelBuilder({ opset: 8 });
    const init = b.input('init', 'float32', [1, 2]);
    const seq = b.input('seq', 'float32', [1, 3, 2]);
    const [fin, outs] = b.opMulti('Scan', [null, init, seq], { body: body.build().graph, num_scan_inputs: 1 }, { outputs: 2 });
    b.output(fin, 'fin', { kind: 'tensor', dtype: 'float32', shape: [1, 2] });
    b.output(outs, 'outs', { kind: 'tensor', dtype: 'float32', shape: [1, 3, 2] });
    const m = b.build();
    const u = await sameOnOrt(m, 16, { init: values([1, 2]), seq: values([1, 3, 2], 3) });
    assert.deepEqual(ops(u), ['Squeeze', 'Squeeze', 'Scan', 'Unsqueeze', 'Unsqueeze']);
  });

  it('experimental ImageScaler becomes Mul and Add', async () => {
    const b = new ModelBuilder({ opset: 8 });
    const x = b.input('x', 'float32', [1, 3, 2, 2]);
    b.output(b.op('ImageScaler', [x], { scale: 2, bias: [1, 2, 3] }), 'y', { kind: 'tensor', dtype: 'float32', shape: [1, 3, 2, 2] });
    const u = upgraded(b.build(), 13);
    assert.deepEqual(ops(u), ['Mul', 'Add']);
    const xv = values([1, 3, 2, 2]);
    const got = (await runOrt(u, { x: xv })).y.toNumbers();
    for (const [i, v] of xv.toNumbers().entries()) assert.ok(Math.abs(got[i] - (2 * v + [1, 2, 3][Math.floor(i / 4)])) < 1e-6);
  });
});

describe('upgradeOpset: the model as a whole', () => {
  it('sets the opset import and raises the IR version; a subgraph is upgraded too', async () => {
    const then = new ModelBuilder({ opset: 10 });
    const tx = then.input('tx', 'float32', [2, 3]);
    then.output(then.op('Squeeze', [then.op('Unsqueeze', [tx], { axes: [0] })], { axes: [0] }), 'ty');
    const els = new ModelBuilder({ opset: 10 });
    const ex = els.input('ex', 'float32', [2, 3]);
    els.output(els.op('Clip', [ex], { min: 0 }), 'ey');
    const thenG = then.build().graph;
    const elseG = els.build().graph;
    // Branches read the outer x: drop their formal inputs.
    const b = new ModelBuilder({ opset: 10 });
    const x = b.input('x', 'float32', [2, 3]);
    const cond = b.input('cond', 'bool', []);
    for (const [g, formal] of [
      [thenG, 'tx'],
      [elseG, 'ex'],
    ] as const) {
      const v = g.inputs.find((i) => i.name === formal);
      if (v) {
        g.inputs.splice(g.inputs.indexOf(v), 1);
        for (const use of [...v.uses]) use.node.setInput(use.index, x);
      }
    }
    const m = b.build();
    const ifNode = m.graph.addNode('If', [cond], ['y'], {
      attrs: [
        ['then_branch', { type: 'graph', value: thenG }],
        ['else_branch', { type: 'graph', value: elseG }],
      ],
    });
    ifNode.output().type = { kind: 'tensor', dtype: 'float32', shape: [2, 3] };
    m.graph.addOutput(ifNode.output());
    m.irVersion = 5;
    const report = upgradeOpset(m, 13);
    assert.equal(m.opset(''), 13);
    assert.equal(m.irVersion, 7);
    assert.equal(report.from, 10);
    assert.deepEqual(report.adapted, { 'Unsqueeze@13': 1, 'Squeeze@13': 1, 'Clip@11': 1 });
    for (const n of m.graph.allNodes()) if (n.opType !== 'If') assert.ok(!n.attrs.has('axes') && !n.attrs.has('min'));
  });

  it('upgrades model functions, with constants as Constant nodes (function bodies hold no initializers)', async () => {
    const body = new Graph('F');
    const a = body.addInput('a', { kind: 'tensor', dtype: 'float32', shape: [2, 3] });
    const un = body.addNode('Unsqueeze', [a], ['b'], { attrs: [['axes', { type: 'ints', value: [0] }]] });
    body.addOutput(un.output());
    const main = new Graph('main');
    const x = main.addInput('x', { kind: 'tensor', dtype: 'float32', shape: [2, 3] });
    const call = main.addNode('F', [x], ['y'], { domain: 'local' });
    call.output().type = { kind: 'tensor', dtype: 'float32', shape: [1, 2, 3] };
    main.addOutput(call.output());
    const m = new Model(
      main,
      new Map([
        ['', 11],
        ['local', 1],
      ]),
      6,
    );
    m.functions.push({ name: 'F', domain: 'local', body, attributeNames: [], attributeDefaults: [], opsetImports: new Map([['', 11]]) });
    const report = upgradeOpset(m, 13);
    assert.deepEqual(report.adapted, { 'Unsqueeze@13': 1 });
    assert.equal(report.addedInitializers, 0);
    assert.deepEqual(
      body.nodes.map((n) => n.opType),
      ['Constant', 'Unsqueeze'],
    );
    assert.equal(m.functions[0].opsetImports.get(''), 13);
    const y = (await runOrt(m, { x: values([2, 3]) })).y;
    assert.deepEqual(y.dims, [1, 2, 3]);
  });

  it('refuses downgrades, targets out of range, and ops the spec removed', () => {
    const b = new ModelBuilder({ opset: 13 });
    b.output(b.op('Relu', [b.input('x', 'float32', [2])]), 'y');
    const m = b.build();
    refuses(() => upgradeOpset(m, 12), /at opset 13, and downgrading is not supported/);
    refuses(() => upgradeOpset(m, 6), /targets from 7 to 21/);
    refuses(() => upgradeOpset(m, 22), /targets from 7 to 21/);
    assert.equal(m.opset(''), 13);
    const old = new ModelBuilder({ opset: 8 });
    const x = old.input('x', 'float32', [1, 3, 4, 4]);
    old.output(old.op('Crop', [x], { border: [1, 1, 1, 1] }, { name: 'crop' }), 'y', { kind: 'tensor', dtype: 'float32' });
    const crop = old.build();
    refuses(() => upgradeOpset(crop, 10), /Crop node "crop" from opset 8 to 10: Crop was an experimental op/);
    assert.equal(crop.opset(''), 8, 'a refusal found before rewriting leaves the model alone');
  });

  it('refuses a Scan-8 over a batch of more than one', () => {
    const body = new ModelBuilder({ opset: 8 });
    const acc = body.input('acc', 'float32', [2]);
    const xi = body.input('xi', 'float32', [2]);
    const sum = body.op('Add', [acc, xi]);
    body.output(sum, 'acc_out');
    const b = new ModelBuilder({ opset: 8 });
    const [fin] = b.opMulti(
      'Scan',
      [null, b.input('init', 'float32', [4, 2]), b.input('seq', 'float32', [4, 3, 2])],
      { body: body.build().graph, num_scan_inputs: 1 },
      { outputs: 1, name: 'scan' },
    );
    b.output(fin, 'fin', { kind: 'tensor', dtype: 'float32', shape: [4, 2] });
    refuses(() => upgradeOpset(b.build(), 9), /Scan node "scan".*Scan-8 → Scan-9.*batch size 4/);
  });

  it('mobilize convert --opset upgrades before writing', () => {
    const b = new ModelBuilder({ opset: 11 });
    const x = b.input('x', 'float32', [2, 3, 4]);
    b.output(b.op('Softmax', [x], { axis: 1 }), 'y');
    const dir = tmpDir();
    const input = join(dir, 'in.onnx');
    saveModel(b.build(), input);
    const output = join(dir, 'out.onnx');
    const run = (args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/bin.ts'), ...args], { cwd: ROOT, encoding: 'utf8' });
    const r = run(['convert', input, '-o', output, '--opset', '17', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.upgrade.to, 17);
    assert.deepEqual(report.upgrade.adapted, { 'Softmax@13': 1 });
    assert.equal(readOnnx(readFileSync(output)).opset(''), 17);
    const bad = run(['convert', input, '-o', join(dir, 'bad.onnx'), '--opset', '9']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /downgrading is not supported/);
  });
});
