/** Golden tests for the layout passes: merge-transposes, merge-reshapes, transpose-sinking, layout-nhwc. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareOutputs } from '../../src/eval/equivalence.js';
import type { Model } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { transposeTensor } from '../../src/ops/shape.js';
import { deadCode } from '../../src/passes/dead-code.js';
import { runToFixedPoint } from '../../src/passes/driver.js';
import { layoutNhwc, NCHW_TO_NHWC, NHWC_TO_NCHW, nhwcBoundaries } from '../../src/passes/layout-nhwc.js';
import { mergeReshapes } from '../../src/passes/merge-reshapes.js';
import { mergeTransposes } from '../../src/passes/merge-transposes.js';
import { samePerm } from '../../src/passes/perm.js';
import { type LayoutRule, transposeSinking, transposeSinkingWith } from '../../src/passes/transpose-sinking.js';
import { optimizeModel } from '../../src/pipeline/optimize.js';
import { randomFeeds } from '../../src/runtime/feeds.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { buildModel, checkPass, graphText } from './helpers.js';

const count = (m: Model, op: string): number => m.graph.nodes.filter((n) => n.opType === op).length;

describe('merge-transposes', () => {
  it('removes two Transposes that compose to the identity', async () => {
    await checkPass(mergeTransposes, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        const t = b.op('Transpose', [b.op('Transpose', [x], { perm: [1, 2, 0] })], { perm: [2, 0, 1] });
        b.output(b.op('Relu', [t]), 'y');
      },
      expected: `
graph g (%x: float32[2,3,4]) -> (%y: float32[2,3,4]) {
  %y = Relu(%x)
}`,
    });
  });

  it('merges two Transposes into one with the composed perm; the inner one stays for its other reader', async () => {
    await checkPass(mergeTransposes, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        const inner = b.op('Transpose', [x], { perm: [1, 0, 2] });
        b.output(b.op('Transpose', [inner], { perm: [0, 2, 1] }), 'y');
        b.output(b.op('Neg', [inner]), 'z');
      },
      expected: `
graph g (%x: float32[2,3,4]) -> (%y: float32[3,4,2], %z: float32[3,2,4]) {
  %transpose_out = Transpose(%x) {perm=[1,0,2]}
  %y = Transpose(%x) {perm=[1,2,0]}
  %z = Neg(%transpose_out)
}`,
    });
  });

  it('keeps both names when the pair cancels between a graph input and a graph output', async () => {
    await checkPass(mergeTransposes, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3]);
        b.output(b.op('Transpose', [b.op('Transpose', [x], { perm: [1, 0] })], { perm: [1, 0] }), 'y');
      },
      expected: `
graph g (%x: float32[2,3]) -> (%y: float32[2,3]) {
  %y = Identity(%x)
}`,
    });
  });

  it('leaves a Transpose of a constant to constant folding', async () => {
    await checkPass(mergeTransposes, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3]);
        const c = b.floats('c', [2, 3], [1, 2, 3, 4, 5, 6]);
        b.output(b.op('Add', [x, b.op('Transpose', [b.op('Transpose', [c], { perm: [1, 0] })], { perm: [1, 0] })]), 'y');
      },
      expected: `
graph g (%x: float32[2,3]) -> (%y: float32[2,3]) {
  init %c: float32[2,3]
  %transpose_out = Transpose(%c) {perm=[1,0]}
  %transpose_out_1 = Transpose(%transpose_out) {perm=[1,0]}
  %y = Add(%x, %transpose_out_1)
}`,
    });
  });
});

describe('merge-reshapes', () => {
  it('turns Flatten → Unsqueeze with a static result into one Reshape', async () => {
    await checkPass(mergeReshapes, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4, 4]);
        b.output(b.op('Unsqueeze', [b.op('Flatten', [x], { axis: 1 }), b.ints('axes', [1])]), 'y');
      },
      expected: `
graph g (%x: float32[2,3,4,4]) -> (%y: float32[2,1,48]) {
  init %y_shape: int64[3]
  %y = Reshape(%x, %y_shape)
}`,
    });
  });

  it('keeps the outer target of a Reshape of a Reshape, symbolic batch and all', async () => {
    await checkPass(mergeReshapes, {
      build(b) {
        const x = b.input('x', 'float32', ['N', 3, 4, 4]);
        const r = b.op('Reshape', [x, b.ints('s1', [0, -1])]);
        b.output(b.op('Reshape', [r, b.ints('s2', [-1, 4, 12])]), 'y');
      },
      expected: `
graph g (%x: float32[N,3,4,4]) -> (%y: float32[N,4,12]) {
  init %s2: int64[3]
  %y = Reshape(%x, %s2)
}`,
    });
  });

  it('copies a symbolic batch with a 0 entry when every other dim is known', async () => {
    const { after } = await checkPass(mergeReshapes, {
      build(b) {
        const x = b.input('x', 'float32', ['N', 3, 4]);
        b.output(b.op('Flatten', [b.op('Unsqueeze', [x, b.ints('axes', [1])])], { axis: 1 }), 'y');
      },
      expected: `
graph g (%x: float32[N,3,4]) -> (%y: float32[N,12]) {
  init %y_shape: int64[2]
  %y = Reshape(%x, %y_shape)
}`,
    });
    const target = after.graph.initializers.find((v) => v.name === 'y_shape')?.initializer;
    assert.deepEqual(target?.toNumbers(), [0, 12]);
  });

  it('rebuilds the target from shapes when the outer Reshape copies a dim with 0', async () => {
    const { after } = await checkPass(mergeReshapes, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        const r = b.op('Reshape', [x, b.ints('s1', [6, 4])]);
        b.output(b.op('Reshape', [r, b.ints('s2', [0, 2, 2])]), 'y');
      },
      expected: `
graph g (%x: float32[2,3,4]) -> (%y: float32[6,2,2]) {
  init %y_shape: int64[3]
  %y = Reshape(%x, %y_shape)
}`,
    });
    assert.deepEqual(after.graph.initializers.find((v) => v.name === 'y_shape')?.initializer?.toNumbers(), [6, 2, 2]);
  });

  it('leaves a chain whose result needs both a copied batch and a -1 (an empty batch could not be reshaped)', async () => {
    await checkPass(mergeReshapes, {
      build(b) {
        const x = b.input('x', 'float32', ['N', 3, 'H']);
        b.output(b.op('Unsqueeze', [b.op('Flatten', [x], { axis: 1 }), b.ints('axes', [2])]), 'y');
      },
      expected: `
graph g (%x: float32[N,3,H]) -> (%y: float32[N,3*H,1]) {
  init %axes: int64[1]
  %flatten_out = Flatten(%x) {axis=1}
  %y = Unsqueeze(%flatten_out, %axes)
}`,
    });
  });
});

describe('transpose-sinking', () => {
  it('sinks through Add with a per-channel constant (permuting the constant) and Relu, cancelling the inverse', async () => {
    const { after } = await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [1, 4, 5, 3]);
        const t = b.op('Transpose', [x], { perm: [0, 3, 1, 2] });
        const a = b.op('Add', [t, b.floats('bias', [3, 1, 1], [1, 2, 3])]);
        b.output(b.op('Transpose', [b.op('Relu', [a])], { perm: [0, 2, 3, 1] }), 'y');
      },
      expected: `
graph g (%x: float32[1,4,5,3]) -> (%y: float32[1,4,5,3]) {
  init %bias_perm: float32[1,1,1,3]
  %add_out_0312 = Add(%x, %bias_perm)
  %y = Relu(%add_out_0312)
}`,
    });
    assert.deepEqual(after.graph.initializers[0].initializer?.toNumbers(), [1, 2, 3]);
  });

  it('leaves a Transpose whose one reader cannot take it', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        const w = b.floats(
          'w',
          [3, 5],
          Array.from({ length: 15 }, (_, i) => i),
        );
        b.output(b.op('MatMul', [b.op('Transpose', [x], { perm: [0, 2, 1] }), w]), 'y');
      },
      expected: `
graph g (%x: float32[2,3,4]) -> (%y: float32[2,4,5]) {
  init %w: float32[3,5]
  %transpose_out = Transpose(%x) {perm=[0,2,1]}
  %y = MatMul(%transpose_out, %w)
}`,
    });
  });

  it('leaves a Transpose when one of its readers cannot take it, even if the others can', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 3]);
        const t = b.op('Transpose', [x], { perm: [0, 2, 1] });
        b.output(b.op('Transpose', [b.op('Relu', [t])], { perm: [0, 2, 1] }), 'y');
        b.output(b.op('MatMul', [t, x]), 'z');
      },
      expected: `
graph g (%x: float32[2,3,3]) -> (%y: float32[2,3,3], %z: float32[2,3,3]) {
  %transpose_out = Transpose(%x) {perm=[0,2,1]}
  %relu_out = Relu(%transpose_out)
  %y = Transpose(%relu_out) {perm=[0,2,1]}
  %z = MatMul(%transpose_out, %x)
}`,
    });
  });

  it('does not move a Transpose when nothing cancels downstream (a move with nothing to gain)', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        b.output(b.op('Sigmoid', [b.op('Transpose', [x], { perm: [2, 0, 1] })]), 'y');
      },
      expected: `
graph g (%x: float32[2,3,4]) -> (%y: float32[4,2,3]) {
  %transpose_out = Transpose(%x) {perm=[2,0,1]}
  %y = Sigmoid(%transpose_out)
}`,
    });
  });

  it('leaves an Add whose other operand is not transposed', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3]);
        const z = b.input('z', 'float32', [3, 2]);
        const a = b.op('Add', [b.op('Transpose', [x], { perm: [1, 0] }), z]);
        b.output(b.op('Transpose', [a], { perm: [1, 0] }), 'y');
      },
      expected: `
graph g (%x: float32[2,3], %z: float32[3,2]) -> (%y: float32[2,3]) {
  %transpose_out = Transpose(%x) {perm=[1,0]}
  %add_out = Add(%transpose_out, %z)
  %y = Transpose(%add_out) {perm=[1,0]}
}`,
    });
  });

  it('remaps the Concat axis when every operand carries the same Transpose: two become one', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const a = b.input('a', 'float32', [1, 2, 2, 3]);
        const c = b.input('c', 'float32', [1, 2, 2, 5]);
        const ta = b.op('Transpose', [a], { perm: [0, 3, 1, 2] });
        const tc = b.op('Transpose', [c], { perm: [0, 3, 1, 2] });
        b.output(b.op('Concat', [ta, tc], { axis: 1 }), 'y');
      },
      expected: `
graph g (%a: float32[1,2,2,3], %c: float32[1,2,2,5]) -> (%y: float32[1,8,2,2]) {
  %y_0312 = Concat(%a, %c) {axis=3}
  %y = Transpose(%y_0312) {perm=[0,3,1,2]}
}`,
    });
  });

  it('sinks through Softmax (opset 13 axis), Slice (axes input) and Pad (pads), cancelling at the end', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [2, 6, 4]);
        const t = b.op('Transpose', [x], { perm: [0, 2, 1] });
        const s = b.op('Softmax', [t], { axis: -1 });
        const sl = b.op('Slice', [s, b.ints('starts', [1]), b.ints('ends', [5]), b.ints('axes', [2])]);
        const p = b.op('Pad', [sl, b.ints('pads', [0, 1, 0, 0, 2, 0])]);
        b.output(b.op('Transpose', [p], { perm: [0, 2, 1] }), 'y');
      },
      expected: `
graph g (%x: float32[2,6,4]) -> (%y: float32[2,4,7]) {
  init %starts: int64[1]
  init %ends: int64[1]
  init %axes_perm: int64[1]
  init %pads_perm: int64[6]
  %softmax_out_021 = Softmax(%x) {axis=1}
  %slice_out_021 = Slice(%softmax_out_021, %starts, %ends, %axes_perm)
  %y = Pad(%slice_out_021, %pads_perm)
}`,
    });
  });

  it('remaps Reduce axes; without keepdims the reduced axes leave no Transpose behind', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [2, 4, 4, 3]);
        const t = b.op('Transpose', [x], { perm: [0, 3, 1, 2] });
        b.output(b.op('ReduceMean', [t], { axes: [2, 3], keepdims: 0 }), 'y');
      },
      opset: 17,
      expected: `
graph g (%x: float32[2,4,4,3]) -> (%y: float32[2,3]) {
  %y = ReduceMean(%x) {axes=[1,2], keepdims=0}
}`,
    });
  });

  it('pushes a Transpose into a Split only when every copy cancels further down', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [2, 4, 6]);
        const [p, q] = b.opMulti(
          'Split',
          [b.op('Transpose', [x], { perm: [0, 2, 1] }), b.ints('split', [2, 4])],
          { axis: 1 },
          { outputs: 2 },
        );
        b.output(b.op('Transpose', [p], { perm: [0, 2, 1] }), 'y');
        b.output(b.op('Transpose', [b.op('Exp', [q])], { perm: [0, 2, 1] }), 'z');
      },
      expected: `
graph g (%x: float32[2,4,6]) -> (%y: float32[2,4,2], %z: float32[2,4,4]) {
  init %split: int64[2]
  %y, %split_1_out_021 = Split(%x, %split) {axis=2}
  %z = Exp(%split_1_out_021)
}`,
    });
  });

  it('does not fan a Transpose out into a Split whose parts lead nowhere', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [2, 4, 6]);
        const [p, q] = b.opMulti(
          'Split',
          [b.op('Transpose', [x], { perm: [0, 2, 1] }), b.ints('split', [2, 4])],
          { axis: 1 },
          { outputs: 2 },
        );
        b.output(b.op('Relu', [p]), 'y');
        b.output(b.op('Exp', [q]), 'z');
      },
      expected: `
graph g (%x: float32[2,4,6]) -> (%y: float32[2,2,4], %z: float32[2,4,4]) {
  init %split: int64[2]
  %transpose_out = Transpose(%x) {perm=[0,2,1]}
  %split_0_out, %split_1_out = Split(%transpose_out, %split) {axis=1}
  %y = Relu(%split_0_out)
  %z = Exp(%split_1_out)
}`,
    });
  });

  it('sinks through per-tensor QuantizeLinear/DequantizeLinear', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [1, 3, 4, 2]);
        const t = b.op('Transpose', [x], { perm: [0, 3, 1, 2] });
        const q = b.op('QuantizeLinear', [t, b.floats('scale', [], [0.05]), b.constant('zp', Tensor.from('uint8', [], [128]))]);
        const d = b.op('DequantizeLinear', [q, b.floats('scale2', [], [0.05]), b.constant('zp2', Tensor.from('uint8', [], [128]))]);
        b.output(b.op('Transpose', [d], { perm: [0, 2, 3, 1] }), 'y');
      },
      expected: `
graph g (%x: float32[1,3,4,2]) -> (%y: float32[1,3,4,2]) {
  init %scale: float32[]
  init %zp: uint8[]
  init %scale2: float32[]
  init %zp2: uint8[]
  %quantizelinear_out_0312 = QuantizeLinear(%x, %scale, %zp)
  %y = DequantizeLinear(%quantizelinear_out_0312, %scale2, %zp2)
}`,
    });
  });

  it('keeps a graph output name when the Transpose after it cancels', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3]);
        const r = b.op('Relu', [b.op('Transpose', [x], { perm: [1, 0] })]);
        b.output(r, 'r');
        b.output(b.op('Transpose', [r], { perm: [1, 0] }), 'y');
      },
      expected: `
graph g (%x: float32[2,3]) -> (%r: float32[3,2], %y: float32[2,3]) {
  %y = Relu(%x)
  %r = Transpose(%y) {perm=[1,0]}
}`,
    });
  });
});

/** Conv → Relu → Add, NCHW, then GlobalAveragePool → Flatten → Gemm (`head`) and/or the feature map as an output. */
function convNet({ head = true, features = false } = {}): Model {
  return buildModel((b) => {
    const x = b.input('image', 'float32', [1, 3, 8, 8]);
    const w = b.floats(
      'w',
      [4, 3, 3, 3],
      Array.from({ length: 108 }, (_, i) => Math.sin(i)),
    );
    const conv = b.op('Conv', [x, w, b.floats('cb', [4], [0.1, -0.2, 0.3, 0])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    const r = b.op('Relu', [conv]);
    const a = b.op('Add', [r, b.floats('shift', [4, 1, 1], [1, 2, 3, 4])]);
    if (features) b.output(head ? b.op('Identity', [a]) : a, 'features');
    if (!head) return;
    const pooled = b.op('Flatten', [b.op('GlobalAveragePool', [a])], { axis: 1 });
    const fc = b.op('Gemm', [pooled, b.floats('fw', [2, 4], [1, -1, 0.5, 2, 0, 1, 1, -3]), b.floats('fb', [2], [0.5, -0.5])], {
      transB: 1,
    });
    b.output(fc, 'logits');
  });
}

describe('layout-nhwc', () => {
  it('makes a conv net take NHWC; only the boundary Transpose remains and outputs match on the transposed input', async () => {
    const original = convNet();
    const m = convNet();
    const report = layoutNhwc(m, { verifyEachPass: true });
    assert.deepEqual(report.inputs, ['image']);
    assert.deepEqual(report.outputs, []);
    assert.equal(report.transposes, 1);
    assert.equal(
      graphText(m),
      `
graph g (%image: float32[1,8,8,3]) -> (%logits: float32[1,2]) {
  init %w: float32[4,3,3,3]
  init %cb: float32[4]
  init %shift: float32[4,1,1]
  init %fw: float32[2,4]
  init %fb: float32[2]
  %image_nchw = Transpose(%image) {perm=[0,3,1,2]}
  %conv_out = Conv(%image_nchw, %w, %cb) {kernel_shape=[3,3], pads=[1,1,1,1]}
  %relu_out = Relu(%conv_out)
  %add_out = Add(%relu_out, %shift)
  %globalaveragepool_out = GlobalAveragePool(%add_out)
  %flatten_out = Flatten(%globalaveragepool_out) {axis=1}
  %logits = Gemm(%flatten_out, %fw, %fb) {transB=1}
}`.trim(),
    );
    await assertSameOnTransposedInput(original, m);
  });

  it('gives rank-4 outputs as NHWC too', async () => {
    const original = convNet({ features: true });
    const m = convNet({ features: true });
    const report = layoutNhwc(m, { verifyEachPass: true });
    assert.deepEqual(report.outputs, ['features']);
    assert.equal(report.transposes, 2);
    const features = m.graph.outputs.find((v) => v.name === 'features');
    assert.deepEqual(features?.type?.kind === 'tensor' && features.type.shape, [1, 8, 8, 4]);
    await assertSameOnTransposedInput(original, m);
  });

  it('lets an exporter declare its NHWC Conv layout-transparent: the boundary Transposes then cancel', () => {
    const m = convNet({ head: false, features: true });
    // What a TFLite/NCNN exporter declares: its Conv reads NHWC, so a Transpose NHWC→NCHW in front of
    // it can move behind it.
    const nhwcConv: LayoutRule = {
      layoutInputs: () => [0],
      remap: (_node, perm) =>
        samePerm(perm, NHWC_TO_NCHW)
          ? {
              edit: (n) => {
                n.domain = 'test.nhwc';
              },
              outputPerms: [NHWC_TO_NCHW],
            }
          : undefined,
    };
    nhwcBoundaries(m);
    m.opsetImports.set('test.nhwc', 1);
    const sinking = transposeSinkingWith({ Conv: nhwcConv });
    runToFixedPoint(m, [mergeTransposes, sinking, deadCode], { verifyEachPass: true });
    assert.equal(count(m, 'Transpose'), 0);
    assert.equal(
      graphText(m),
      `
graph g (%image: float32[1,8,8,3]) -> (%features: float32[1,8,8,4]) {
  init %w: float32[4,3,3,3]
  init %cb: float32[4]
  init %shift_perm: float32[1,1,1,4]
  %conv_out_0312 = test.nhwc.Conv(%image, %w, %cb) {kernel_shape=[3,3], pads=[1,1,1,1]}
  %relu_out_0312 = Relu(%conv_out_0312)
  %features = Add(%relu_out_0312, %shift_perm)
}`.trim(),
    );
  });

  it('is what optimize --layout nhwc runs: checked against the boundary-only model, counted against the original', async () => {
    const m = convNet({ features: true });
    const before = m.graph.nodes.length;
    const report = await optimizeModel(m, { layout: 'nhwc', verifyWith: nodeBackend() });
    assert.deepEqual(report.layout, { inputs: ['image'], outputs: ['features'] });
    assert.equal(report.verify.checked, true);
    assert.ok((report.verify.agreement?.worst ?? 1) <= 1e-6);
    assert.equal(report.nodesBefore, before);
    assert.equal(report.opsBefore.Transpose, undefined);
    assert.equal(report.opsAfter.Transpose, 2);
  });

  it('leaves a model without rank-4 inputs or outputs as it is', () => {
    const m = buildModel((b) => {
      b.output(b.op('Relu', [b.input('x', 'float32', [2, 3])]), 'y');
    });
    const before = graphText(m);
    const report = layoutNhwc(m);
    assert.deepEqual([report.inputs, report.outputs], [[], []]);
    assert.equal(graphText(m), before);
  });
});

/** Runs `original` on random NCHW inputs and `nhwc` on the same inputs transposed; rank-4 outputs are compared back in NCHW. */
async function assertSameOnTransposedInput(original: Model, nhwc: Model): Promise<void> {
  const feeds = randomFeeds(original, 3);
  const backend = nodeBackend();
  const run = async (m: Model, f: Record<string, Tensor>): Promise<Record<string, Tensor>> => {
    const s = await backend.createSession(m, { optimization: 'disabled' });
    try {
      return await s.run(f);
    } finally {
      await s.release();
    }
  };
  const transposed = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.rank === 4 ? transposeTensor(t, NCHW_TO_NHWC) : t]));
  const shapes = (m: Model) => m.graph.inputs.map((v) => (v.type?.kind === 'tensor' ? v.type.shape : undefined));
  const nchw = shapes(original).map((s) => (s?.length === 4 ? NCHW_TO_NHWC.map((i) => s[i]) : s));
  assert.deepEqual(shapes(nhwc), nchw);
  const want = await run(original, feeds);
  const got = await run(nhwc, transposed);
  const back = Object.fromEntries(Object.entries(got).map(([k, t]) => [k, t.rank === 4 ? transposeTensor(t, NHWC_TO_NCHW) : t]));
  const agreement = compareOutputs(want, back);
  assert.ok(agreement.worst <= 1e-6, JSON.stringify(agreement.outputs));
}

describe('transpose-sinking, more cases', () => {
  it('pushes a Transpose with several readers when all of them can take it', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        const t = b.op('Transpose', [x], { perm: [1, 2, 0] });
        b.output(b.op('Transpose', [b.op('Relu', [t])], { perm: [2, 0, 1] }), 'y');
        b.output(b.op('Transpose', [b.op('Exp', [t])], { perm: [2, 0, 1] }), 'z');
      },
      expected: `
graph g (%x: float32[2,3,4]) -> (%y: float32[2,3,4], %z: float32[2,3,4]) {
  %y = Relu(%x)
  %z = Exp(%x)
}`,
    });
  });

  it('reads through a same-perm Transpose on the other operand: Add of two Transposes becomes one Transpose', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const a = b.input('a', 'float32', [2, 3]);
        const c = b.input('c', 'float32', [2, 3]);
        const sum = b.op('Add', [b.op('Transpose', [a], { perm: [1, 0] }), b.op('Transpose', [c], { perm: [1, 0] })]);
        b.output(b.op('Neg', [sum]), 'y');
      },
      expected: `
graph g (%a: float32[2,3], %c: float32[2,3]) -> (%y: float32[3,2]) {
  %add_out_10 = Add(%a, %c)
  %add_out = Transpose(%add_out_10) {perm=[1,0]}
  %y = Neg(%add_out)
}`,
    });
  });

  it('remaps ReduceSum axes given as an input (opset 13) and keeps the dims', async () => {
    await checkPass(transposeSinking, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        const t = b.op('Transpose', [x], { perm: [2, 0, 1] });
        const s = b.op('ReduceSum', [t, b.ints('axes', [0])], { keepdims: 1 });
        b.output(b.op('Transpose', [s], { perm: [1, 2, 0] }), 'y');
      },
      expected: `
graph g (%x: float32[2,3,4]) -> (%y: float32[2,3,1]) {
  init %reducesum_axes: int64[1]
  %y = ReduceSum(%x, %reducesum_axes) {keepdims=1}
}`,
    });
  });

  it('drops a Transpose of a tensor whose dims are all 1 (what a reduction over every axis leaves)', async () => {
    await checkPass(transposeSinking, {
      opset: 12,
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        const s = b.op('ReduceL2', [b.op('Transpose', [x], { perm: [1, 2, 0] })], { keepdims: 1 });
        b.output(b.op('Transpose', [s], { perm: [2, 0, 1] }), 'y');
      },
      expected: `
graph g (%x: float32[2,3,4]) -> (%y: float32[1,1,1]) {
  %y = ReduceL2(%x) {keepdims=1}
}`,
    });
  });

  it('sinks through Softmax before opset 13 only when the perm keeps the flattened block together', async () => {
    await checkPass(transposeSinking, {
      opset: 11,
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        const inner = b.op('Softmax', [b.op('Transpose', [x], { perm: [0, 2, 1] })], { axis: 1 });
        b.output(b.op('Transpose', [inner], { perm: [0, 2, 1] }), 'y');
        const last = b.op('Softmax', [b.op('Transpose', [x], { perm: [0, 2, 1] })], { axis: 2 });
        b.output(b.op('Transpose', [last], { perm: [0, 2, 1] }), 'z');
      },
      expected: `
graph g (%x: float32[2,3,4]) -> (%y: float32[2,3,4], %z: float32[2,3,4]) {
  %y = Softmax(%x) {axis=1}
  %transpose_out_2 = Transpose(%x) {perm=[0,2,1]}
  %softmax_out_3 = Softmax(%transpose_out_2) {axis=2}
  %z = Transpose(%softmax_out_3) {perm=[0,2,1]}
}`,
    });
  });

  it('remaps Slice axes given as attributes (opset 9)', async () => {
    await checkPass(transposeSinking, {
      opset: 9,
      build(b) {
        const x = b.input('x', 'float32', [2, 6, 4]);
        const s = b.op('Slice', [b.op('Transpose', [x], { perm: [0, 2, 1] })], { starts: [1], ends: [4], axes: [2] });
        b.output(b.op('Transpose', [s], { perm: [0, 2, 1] }), 'y');
      },
      expected: `
graph g (%x: float32[2,6,4]) -> (%y: float32[2,3,4]) {
  %y = Slice(%x) {axes=[1], ends=[4], starts=[1]}
}`,
    });
  });
});
