/**
 * Gradient rules of the network layers: convolutions, pools, normalizations and losses, checked
 * by finite differences on onnxruntime. onnxruntime runs Conv, ConvTranspose, AveragePool,
 * GlobalAveragePool and MaxUnpool in float32 only, so those cases run in float32; a convolution
 * is linear in each of its inputs, so a large step (0.5) keeps the differences exact up to
 * float32 rounding.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { buildGradients } from '../../src/train/autodiff.js';
import { Random } from '../../src/util/random.js';
import { distinct, expectGradient, type FloatType, RESULTS } from './gradcheck.js';

after(() => {
  for (const r of RESULTS) console.log(`# ${r.name.padEnd(44)} ${r.dtype}  worst ${r.worst.toExponential(2)}`);
});

type Attrs = Record<string, number | number[] | string>;

/** A convolution case: x [N, C, …], w, optional bias; linear in each, so a large step is exact. */
function convCase(op: 'Conv' | 'ConvTranspose', x: number[], w: number[], attrs: Attrs, bias = true) {
  return {
    dtype: 'float32' as const,
    step: 0.5,
    tolerance: 2e-3,
    build: (b: ModelBuilder, t: FloatType) => {
      const outChannels = op === 'Conv' ? w[0] : w[1] * (typeof attrs.group === 'number' ? attrs.group : 1);
      const inputs: Value[] = [b.input('x', t, x), b.input('w', t, w)];
      if (bias) inputs.push(b.input('b', t, [outChannels]));
      return b.op(op, inputs, attrs);
    },
  };
}

describe('gradients: Conv', () => {
  const cases: Array<[string, number[], number[], Attrs]> = [
    ['3×3 pads 1', [2, 3, 6, 6], [4, 3, 3, 3], { pads: [1, 1, 1, 1] }],
    ['stride 2, asymmetric pads', [2, 3, 7, 6], [4, 3, 3, 3], { strides: [2, 2], pads: [0, 1, 1, 0] }],
    ['stride 3, rows left over', [1, 2, 8, 8], [3, 2, 3, 2], { strides: [3, 2] }],
    ['dilation 2', [1, 2, 9, 8], [3, 2, 3, 3], { dilations: [2, 2], pads: [2, 1, 2, 1] }],
    ['dilation 2 with stride 2', [1, 2, 9, 9], [2, 2, 2, 3], { dilations: [2, 1], strides: [2, 2], pads: [1, 1, 0, 1] }],
    ['groups 2', [2, 4, 5, 5], [6, 2, 3, 3], { group: 2, pads: [1, 1, 1, 1] }],
    ['depthwise ×2', [2, 3, 6, 6], [6, 1, 3, 3], { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] }],
    ['SAME_UPPER stride 2', [1, 2, 7, 6], [3, 2, 3, 3], { auto_pad: 'SAME_UPPER', strides: [2, 2] }],
    ['SAME_LOWER', [1, 2, 6, 5], [3, 2, 4, 4], { auto_pad: 'SAME_LOWER' }],
    ['VALID 1×1', [2, 3, 4, 4], [5, 3, 1, 1], { auto_pad: 'VALID' }],
    ['1-D', [2, 3, 9], [4, 3, 3], { strides: [2], pads: [1, 0] }],
    ['3-D', [1, 2, 4, 5, 4], [2, 2, 2, 3, 2], { pads: [1, 0, 1, 0, 1, 0] }],
  ];
  for (const [name, x, w, attrs] of cases) {
    it(name, async () => {
      await expectGradient(`Conv ${name}`, convCase('Conv', x, w, attrs));
    });
  }
  it('without bias', async () => {
    await expectGradient('Conv no bias', convCase('Conv', [2, 3, 5, 5], [4, 3, 3, 3], { pads: [1, 1, 1, 1] }, false));
  });
});

describe('gradients: ConvTranspose', () => {
  const cases: Array<[string, number[], number[], Attrs]> = [
    ['stride 2, pads, output_padding', [2, 3, 4, 4], [3, 2, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }],
    ['stride 1', [1, 2, 5, 4], [2, 3, 3, 2], {}],
    ['groups 2, dilation 2', [1, 4, 4, 4], [4, 2, 3, 3], { group: 2, dilations: [2, 2], strides: [2, 1], pads: [1, 0, 2, 1] }],
    ['output_shape', [1, 2, 3, 3], [2, 2, 3, 3], { strides: [2, 2], output_shape: [8, 7] }],
    ['SAME_UPPER', [1, 2, 3, 4], [2, 3, 3, 3], { strides: [2, 2], auto_pad: 'SAME_UPPER' }],
  ];
  for (const [name, x, w, attrs] of cases) {
    it(name, async () => {
      await expectGradient(`ConvTranspose ${name}`, convCase('ConvTranspose', x, w, attrs));
    });
  }
});

describe('gradients: pools', () => {
  const pool = (op: string, shape: number[], attrs: Attrs) => (b: ModelBuilder, t: FloatType) => b.op(op, [b.input('x', t, shape)], attrs);
  const maxCases: Array<[string, number[], Attrs, FloatType?]> = [
    ['2×2 stride 2 (MaxUnpool)', [2, 3, 6, 6], { kernel_shape: [2, 2], strides: [2, 2] }, 'float32'],
    ['2×2 stride 2, odd size, ceil_mode (MaxUnpool)', [1, 2, 5, 7], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }, 'float32'],
    ['3×3 stride 2 pads 1 (overlapping)', [1, 2, 7, 7], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, 'float32'],
    ['3×3 stride 1, float64 (ScatterElements)', [1, 2, 5, 5], { kernel_shape: [3, 3] }],
    ['dilation 2', [1, 2, 7, 7], { kernel_shape: [2, 2], dilations: [2, 2] }, 'float32'],
    ['1-D SAME_UPPER', [2, 3, 9], { kernel_shape: [3], strides: [3], auto_pad: 'SAME_UPPER' }, 'float32'],
  ];
  for (const [name, shape, attrs, dtype] of maxCases) {
    it(`MaxPool ${name}`, async () => {
      await expectGradient(`MaxPool ${name}`, { dtype, build: pool('MaxPool', shape, attrs), values: { x: distinct(0.05) } });
    });
  }
  const avgCases: Array<[string, number[], Attrs]> = [
    ['2×2 stride 2', [2, 3, 6, 6], { kernel_shape: [2, 2], strides: [2, 2] }],
    ['3×3 pads 1, pads not counted', [1, 2, 5, 6], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }],
    ['3×3 pads 1, pads counted', [1, 2, 5, 6], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 1 }],
    ['ceil_mode', [1, 2, 5, 5], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }],
    ['SAME_UPPER stride 2', [1, 2, 7, 5], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }],
  ];
  for (const [name, shape, attrs] of avgCases) {
    it(`AveragePool ${name}`, async () => {
      await expectGradient(`AveragePool ${name}`, { dtype: 'float32', step: 0.5, build: pool('AveragePool', shape, attrs) });
    });
  }
  it('GlobalAveragePool and GlobalMaxPool', async () => {
    await expectGradient('GlobalAveragePool', { dtype: 'float32', step: 0.5, build: pool('GlobalAveragePool', [2, 3, 4, 5], {}) });
    await expectGradient('GlobalMaxPool', { build: pool('GlobalMaxPool', [2, 3, 4, 5], {}), values: { x: distinct(0.05) } });
  });
});

describe('gradients: normalizations', () => {
  const bn = (training: boolean, shape: number[]) => (b: ModelBuilder, t: FloatType) => {
    const c = shape[1];
    const stats = (name: string, v: number) => b.constant(name, Tensor.from(t, [c], new Array<number>(c).fill(v)));
    const ins = [b.input('x', t, shape), b.input('scale', t, [c]), b.input('bias', t, [c]), stats('mean', 0.3), stats('var', 1.7)];
    if (!training) return b.op('BatchNormalization', ins, { epsilon: 1e-3 });
    return b.opMulti('BatchNormalization', ins, { epsilon: 1e-3, momentum: 0.9, training_mode: 1 }, { outputs: 3 })[0];
  };
  it('BatchNormalization in training mode (NCHW, NC, NCD)', async () => {
    await expectGradient('BatchNormalization training [2,3,4,5]', { build: bn(true, [2, 3, 4, 5]) });
    await expectGradient('BatchNormalization training [6,4]', { build: bn(true, [6, 4]) });
    await expectGradient('BatchNormalization training [3,2,5]', { build: bn(true, [3, 2, 5]) });
    // Opset 18 takes ReduceMean's axes as an input.
    await expectGradient('BatchNormalization training, opset 18', { opset: 18, build: bn(true, [2, 3, 4, 5]) });
  });
  it('BatchNormalization in inference mode', async () => {
    await expectGradient('BatchNormalization inference', { build: bn(false, [2, 3, 4, 5]) });
  });
  it('InstanceNormalization and LayerNormalization', async () => {
    await expectGradient('InstanceNormalization', {
      build: (b, t) =>
        b.op('InstanceNormalization', [b.input('x', t, [2, 3, 4, 5]), b.input('s', t, [3]), b.input('b', t, [3])], { epsilon: 1e-3 }),
    });
    await expectGradient('LayerNormalization axis -1', {
      build: (b, t) =>
        b.op('LayerNormalization', [b.input('x', t, [2, 3, 6]), b.input('s', t, [6]), b.input('b', t, [6])], { epsilon: 1e-3 }),
    });
    // In float32 the node's own Mean and InvStdDev outputs are used rather than recomputed.
    await expectGradient('LayerNormalization float32 (saved stats)', {
      dtype: 'float32',
      step: 3e-3,
      build: (b, t) =>
        b.op('LayerNormalization', [b.input('x', t, [2, 3, 6]), b.input('s', t, [6]), b.input('b', t, [6])], { epsilon: 1e-3 }),
    });
    await expectGradient('LayerNormalization axis 1', {
      build: (b, t) => b.op('LayerNormalization', [b.input('x', t, [2, 3, 4]), b.input('s', t, [3, 4]), b.input('b', t, [4])], { axis: 1 }),
    });
  });
});

describe('gradients: losses', () => {
  const labels = (b: ModelBuilder, dims: number[], values: number[]) => b.constant('labels', Tensor.from('int64', dims, values));
  const loss =
    (op: string, x: number[], target: { dims: number[]; values: number[] }, attrs: Attrs, weights = false) =>
    (b: ModelBuilder, t: FloatType) => {
      const ins: Value[] = [b.input('x', t, x), labels(b, target.dims, target.values)];
      if (weights) ins.push(b.input('w', t, [x[1]]));
      return b.op(op, ins, attrs);
    };
  const t2 = { dims: [4], values: [2, 0, 1, 2] };
  const t3 = { dims: [2, 3], values: [1, 0, 3, 3, 2, 0] };
  for (const op of ['SoftmaxCrossEntropyLoss', 'NegativeLogLikelihoodLoss']) {
    it(`${op}: reductions, weights, ignore_index, [N,C,D]`, async () => {
      const wrt = ['x'];
      await expectGradient(`${op} mean`, { build: loss(op, [4, 3], t2, {}), wrt });
      await expectGradient(`${op} sum`, { build: loss(op, [4, 3], t2, { reduction: 'sum' }), wrt });
      await expectGradient(`${op} none`, { build: loss(op, [4, 3], t2, { reduction: 'none' }), wrt });
      await expectGradient(`${op} weights`, { build: loss(op, [4, 3], t2, {}, true), wrt, values: { w: (r) => 0.5 + r.next() } });
      await expectGradient(`${op} ignore_index`, { build: loss(op, [4, 3], t2, { ignore_index: 2 }), wrt });
      await expectGradient(`${op} [N,C,D] weights ignore`, {
        build: loss(op, [2, 4, 3], t3, { ignore_index: 0 }, true),
        wrt,
        values: { w: (r) => 0.5 + r.next() },
      });
    });
  }
  it('SoftmaxCrossEntropyLoss with its log_prob output used too', async () => {
    await expectGradient('SoftmaxCrossEntropyLoss + log_prob', {
      build: (b, t) => b.opMulti('SoftmaxCrossEntropyLoss', [b.input('x', t, [3, 5]), labels(b, [3], [4, 0, 2])], {}, { outputs: 2 }),
    });
  });
});

/**
 * Dropout and fake quantization are not differentiable in the finite-difference sense (a fresh
 * random mask each run; a step function), so their gradients are checked against their
 * definitions on onnxruntime outputs of the same run instead.
 */
describe('gradients: Dropout and QuantizeLinear → DequantizeLinear (against their definitions)', () => {
  it('Dropout in training mode passes dY·1/(1 − ratio) where the mask kept the element', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [4, 50]);
    const r = b.input('r', 'float32', [4, 50]);
    const y = b.op('Dropout', [x, b.floats('ratio', [], [0.3]), b.constant('on', Tensor.from('bool', [], [1]))], {}, { name: 'drop' });
    b.output(y, 'y');
    b.output(b.op('ReduceSum', [b.op('Mul', [y, r])], { keepdims: 0 }), 'loss');
    const model = b.build();
    const { gradients } = buildGradients(model, 'loss', ['x']);
    const rng = new Random(5);
    const xs = Float32Array.from({ length: 200 }, () => 0.5 + rng.next());
    const rs = Float32Array.from({ length: 200 }, () => rng.normal());
    const session = await nodeBackend().createSession(model);
    const out = await session.run({ x: Tensor.from('float32', [4, 50], xs), r: Tensor.from('float32', [4, 50], rs) }, [
      'y',
      gradients[0].name,
    ]);
    await session.release();
    const ys = out.y.data as Float32Array;
    const dx = out[gradients[0].name].data as Float32Array;
    let dropped = 0;
    for (let i = 0; i < 200; i++) {
      const kept = ys[i] !== 0;
      if (!kept) dropped++;
      assert.ok(Math.abs(dx[i] - (kept ? rs[i] / 0.7 : 0)) < 1e-6, `element ${i}`);
    }
    assert.ok(dropped > 20 && dropped < 100, `${dropped} of 200 dropped`);
  });

  it('Dropout in inference mode is the identity (finite differences)', async () => {
    await expectGradient('Dropout inference', { build: (b, t) => b.op('Dropout', [b.input('x', t, [3, 4])]) });
  });

  const qdqCases: Array<[string, 'int8' | 'uint8', number[], number[], number | undefined]> = [
    ['per tensor, int8, zero point 3', 'int8', [0.1], [3], undefined],
    ['per tensor, uint8, zero point 128', 'uint8', [0.05], [128], undefined],
    ['per channel (axis 1), int8', 'int8', [0.1, 0.05, 0.2], [0, -5, 7], 1],
  ];
  for (const [name, qtype, scales, zeros, axis] of qdqCases) {
    it(`fake quantization ${name}: dY where not clipped, 0 where clipped`, async () => {
      const b = new ModelBuilder({ opset: 17 });
      const shape = [2, 3, 4];
      const x = b.input('x', 'float32', shape);
      const r = b.input('r', 'float32', shape);
      const pdims = scales.length === 1 ? [] : [scales.length];
      const scale = b.floats('scale', pdims, scales);
      const zp = b.constant('zp', Tensor.from(qtype, pdims, zeros));
      const attrs: Record<string, number> = axis === undefined ? {} : { axis };
      const y = b.op('DequantizeLinear', [b.op('QuantizeLinear', [x, scale, zp], attrs), scale, zp], attrs);
      b.output(b.op('ReduceSum', [b.op('Mul', [y, r])], { keepdims: 0 }), 'loss');
      const model = b.build();
      const { gradients } = buildGradients(model, 'loss', ['x']);
      const rng = new Random(9);
      const n = 24;
      const xs = Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * 250 * Math.max(...scales));
      const rs = Float32Array.from({ length: n }, () => rng.normal());
      const session = await nodeBackend().createSession(model);
      const out = await session.run({ x: Tensor.from('float32', shape, xs), r: Tensor.from('float32', shape, rs) }, [gradients[0].name]);
      await session.release();
      const dx = out[gradients[0].name].data as Float32Array;
      const [lo, hi] = qtype === 'int8' ? [-128, 127] : [0, 255];
      let clipped = 0;
      for (let i = 0; i < n; i++) {
        const c = scales.length === 1 ? 0 : Math.floor(i / 4) % 3;
        const q = Math.round(xs[i] / scales[c]) + zeros[c];
        const inside = q >= lo && q <= hi;
        if (!inside) clipped++;
        assert.equal(dx[i], inside ? rs[i] : 0, `element ${i} (q = ${q})`);
      }
      assert.ok(clipped > 0 && clipped < n, `${clipped} of ${n} clipped`);
    });
  }
});
