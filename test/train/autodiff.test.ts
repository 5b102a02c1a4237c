/** buildGradients itself: accumulation, pruning, naming, seeds, errors, symbolic batch, browser safety. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { build } from 'esbuild';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { buildGradients } from '../../src/train/autodiff.js';
import { ROOT, smallConvNet } from '../helpers.js';
import { distinct, expectGradient } from './gradcheck.js';

function opCounts(m: Model): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of m.graph.nodes) out[n.opType] = (out[n.opType] ?? 0) + 1;
  return out;
}

/** x [2, 3] → `body` → ReduceSum → loss. */
function scalarModel(
  body: (b: ModelBuilder, x: ReturnType<ModelBuilder['input']>) => ReturnType<ModelBuilder['input']>,
  opset = 17,
): Model {
  const b = new ModelBuilder({ opset });
  const x = b.input('x', 'float32', [2, 3]);
  b.output(b.op('ReduceSum', [body(b, x)], { keepdims: 0 }, { name: 'sum' }), 'loss');
  return b.build();
}

describe('buildGradients', () => {
  it('sums the contributions of a value read by several nodes (Add for two, Sum for more)', async () => {
    await expectGradient('x read by three nodes', {
      build: (b, t) => {
        const x = b.input('x', t, [2, 3]);
        return b.op('Add', [b.op('Mul', [b.op('Exp', [x]), b.op('Sin', [x])]), b.op('Tanh', [x])]);
      },
    });
    const m = scalarModel((b, x) => b.op('Add', [b.op('Mul', [b.op('Exp', [x]), b.op('Sin', [x])]), b.op('Tanh', [x])]));
    buildGradients(m, 'loss', ['x']);
    assert.equal(opCounts(m).Sum, 1);
  });

  it('prunes what does not reach the loss and what no wrt value flows into', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 3]);
    const w = b.floats('w', [2, 3], [1, 2, 3, 4, 5, 6]);
    // CumSum has no gradient rule: reached from x but not reaching the loss, and reaching the
    // loss but not from a wrt value, it must not be asked for one.
    b.output(b.op('CumSum', [x, b.ints('ax', [1], [])], {}, { name: 'side' }), 'side');
    const k = b.op('CumSum', [w, b.ints('ax2', [1], [])], {}, { name: 'const' });
    b.output(b.op('ReduceSum', [b.op('Mul', [b.op('Exp', [x]), k])], { keepdims: 0 }), 'loss');
    const m = b.build();
    const before = m.graph.nodes.length;
    const { gradients, nodesAdded } = buildGradients(m, 'loss', ['x']);
    assert.equal(gradients[0].name, 'x_grad');
    assert.equal(m.graph.nodes.length, before + nodesAdded);
    // ReduceSum → Expand; Mul → Mul; Exp → Mul: nothing for the CumSums.
    assert.deepEqual(
      m.graph.nodes.slice(before).map((n) => n.opType),
      ['Expand', 'Mul', 'Mul'],
    );
  });

  it('names the node and op that has no gradient rule', () => {
    const m = scalarModel((b, x) => b.op('CumSum', [x, b.ints('ax', [1], [])], {}, { name: 'cs' }));
    assert.throws(() => buildGradients(m, 'loss', ['x']), { name: 'MobilizeError', message: 'no gradient rule for CumSum node "cs"' });
  });

  it('gives zeros for a wrt value the loss does not depend on, and lists it', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 3]);
    const unused = b.input('u', 'float32', [4]);
    b.output(b.op('Neg', [unused]), 'other');
    b.output(b.op('ReduceSum', [x], { keepdims: 0 }), 'loss');
    const m = b.build();
    const { gradients, unreached } = buildGradients(m, 'loss', ['x', 'u']);
    assert.deepEqual(
      unreached.map((v) => v.name),
      ['u'],
    );
    const s = await nodeBackend().createSession(m);
    const out = await s.run({
      x: Tensor.from('float32', [2, 3], new Float32Array(6)),
      u: Tensor.from('float32', [4], new Float32Array(4)),
    });
    await s.release();
    assert.deepEqual(Array.from(out[gradients[1].name].data as Float32Array), [0, 0, 0, 0]);
    assert.deepEqual(Array.from(out.x_grad.data as Float32Array), [1, 1, 1, 1, 1, 1]);
  });

  it('takes values or names, a seed, a naming function, and leaves outputs alone when asked', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [3]);
    const scale = b.input('scale', 'float32', []);
    const h = b.op('Mul', [x, x], {}, { name: 'square' });
    b.output(b.op('ReduceSum', [h], { keepdims: 0 }), 'loss');
    const m = b.build();
    const outputsBefore = m.graph.outputs.length;
    const { gradients } = buildGradients(m, m.graph.outputs[0], [x, h], { seed: scale, gradName: (v) => `d_${v.name}`, addOutputs: false });
    assert.deepEqual(
      gradients.map((g) => g.name),
      ['d_x', 'd_square_out'],
    );
    assert.equal(m.graph.outputs.length, outputsBefore);
    for (const g of gradients) m.graph.addOutput(g);
    const s = await nodeBackend().createSession(m);
    const out = await s.run({ x: Tensor.from('float32', [3], [1, 2, 3]), scale: Tensor.from('float32', [], [0.5]) });
    await s.release();
    assert.deepEqual(Array.from(out.d_x.data as Float32Array), [1, 2, 3]);
    assert.deepEqual(Array.from(out.d_square_out.data as Float32Array), [0.5, 0.5, 0.5]);
  });

  it('refuses models below opset 13, non-float wrt values and unknown names', () => {
    const old = scalarModel((b, x) => b.op('Exp', [x]), 11);
    assert.throws(() => buildGradients(old, 'loss', ['x']), /opset 11.*upgradeOpset/);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2]);
    const i = b.input('i', 'int64', [2]);
    b.output(b.op('ReduceSum', [b.op('Mul', [x, b.op('Cast', [i], { to: 1 })])], { keepdims: 0 }), 'loss');
    const m = b.build();
    assert.throws(() => buildGradients(m, 'loss', ['i']), /with respect to i: it is int64\[2\], not a float tensor/);
    assert.throws(() => buildGradients(m, 'loss', ['nope']), /wrt value "nope" is not a value of the model/);
    assert.throws(() => buildGradients(m, 'nope', ['x']), /loss "nope"/);
  });

  it('explains what a rule needs when the forward graph does not have it', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 2, 'H', 'W']);
    const w = b.input('w', 'float32', [3, 2, 3, 3]);
    b.output(b.op('ReduceSum', [b.op('Conv', [x, w], {}, { name: 'c' })], { keepdims: 0 }), 'loss');
    const m = b.build();
    assert.throws(
      () => buildGradients(m, 'loss', ['w']),
      /cannot differentiate Conv node "c": the gradient of Conv needs the spatial dims of x known/,
    );
  });

  it('emits opset-13 forms for an opset-13 model (axes as attributes where they still were)', async () => {
    await expectGradient('opset 13: MaxPool, Conv', {
      opset: 13,
      dtype: 'float32',
      step: 0.02,
      build: (b, t) => {
        const p = b.op('MaxPool', [b.input('x', t, [2, 3, 6, 6])], { kernel_shape: [2, 2], strides: [2, 2] });
        return b.op('Conv', [p, b.input('w', t, [4, 3, 3, 3])], { pads: [1, 1, 1, 1], strides: [2, 2] });
      },
      values: { x: distinct(0.05) },
    });
    await expectGradient('opset 13: ReduceMean, Softmax, Split, Squeeze', {
      opset: 13,
      build: (b, t) => {
        const x = b.input('x', t, [2, 4, 3]);
        const m = b.op('ReduceMean', [x], { axes: [2], keepdims: 1 });
        const [p, q] = b.opMulti('Split', [m, b.ints('s', [1, 3])], { axis: 1 }, { outputs: 2 });
        const r = b.op('Squeeze', [p, b.ints('a', [1, 2])]);
        return [b.op('Softmax', [q], { axis: 1 }), b.op('LogSoftmax', [r])];
      },
    });
  });

  it('works with a symbolic batch (Shape-based counts and reshapes)', async () => {
    const m = smallConvNet(2);
    const g = m.graph;
    const labels = g.addInput('labels', { kind: 'tensor', dtype: 'int64', shape: ['N'] });
    const lossNode = g.addNode('SoftmaxCrossEntropyLoss', [g.outputs[0], labels], ['loss']);
    g.addOutput(lossNode.output());
    const weights = g.initializers.map((v) => v.name);
    const { gradients } = buildGradients(m, 'loss', weights);
    const s = await nodeBackend().createSession(m);
    // The mean over the batch: the same sample twice gives the gradient of one.
    const one = Float32Array.from({ length: 3 * 64 }, (_, i) => Math.sin(i));
    const run = async (n: number) => {
      const x = new Float32Array(n * 3 * 64);
      for (let k = 0; k < n; k++) x.set(one, k * one.length);
      return s.run({ x: Tensor.from('float32', [n, 3, 8, 8], x), labels: Tensor.from('int64', [n], new Array(n).fill(2)) });
    };
    const a = await run(1);
    const c = await run(3);
    await s.release();
    for (const gv of gradients) {
      const p = a[gv.name].data as Float32Array;
      const q = c[gv.name].data as Float32Array;
      assert.equal(p.length, q.length);
      for (let i = 0; i < p.length; i++) assert.ok(Math.abs(p[i] - q[i]) <= 1e-5 * (1 + Math.abs(p[i])), `${gv.name}[${i}]`);
    }
  });

  it('src/train bundles for the browser without Node modules', async () => {
    const result = await build({
      entryPoints: [`${ROOT}/src/train/index.ts`],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      metafile: true,
    });
    assert.deepEqual(result.errors, []);
    const inputs = Object.keys(result.metafile.inputs);
    assert.ok(inputs.some((f) => f.endsWith('src/train/autodiff.ts')));
    assert.deepEqual(
      inputs.filter((f) => f.startsWith('node:') || /^src\/(io|cli)\/|runtime\/node/.test(f)),
      [],
    );
  });
});
