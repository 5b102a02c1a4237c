/**
 * Small graphs in the shape of the architectures filter pruning must handle (or refuse): a
 * ResNet block with a downsampling shortcut, DenseNet-style concatenations, a ShuffleNet channel
 * shuffle, GoogLeNet branches, an EfficientNet block with a depthwise conv and squeeze-excite,
 * a Split, and an MLP behind a Flatten. Weights are seeded random; inputs N×3×16×16.
 */
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model, Value } from '../../src/ir/graph.js';

class Net {
  readonly b = new ModelBuilder({ opset: 17 });
  private s: number;

  constructor(seed = 7) {
    this.s = seed;
  }

  rand(n: number, scale = 0.5): number[] {
    return Array.from({ length: n }, () => {
      this.s = (this.s * 1103515245 + 12345) % 2147483648;
      return (this.s / 2147483648 - 0.5) * 2 * scale;
    });
  }

  input(): Value {
    return this.b.input('x', 'float32', ['N', 3, 16, 16]);
  }

  conv(x: Value, name: string, cin: number, cout: number, o: { k?: number; stride?: number; group?: number; bias?: boolean } = {}): Value {
    const k = o.k ?? 3;
    const group = o.group ?? 1;
    const w = this.b.floats(`${name}.w`, [cout, cin / group, k, k], this.rand((cout * cin * k * k) / group));
    const inputs = [x, w];
    if (o.bias) inputs.push(this.b.floats(`${name}.b`, [cout], this.rand(cout, 0.1)));
    const p = (k - 1) >> 1;
    return this.b.op(
      'Conv',
      inputs,
      { kernel_shape: [k, k], pads: [p, p, p, p], strides: [o.stride ?? 1, o.stride ?? 1], group },
      { name },
    );
  }

  bn(x: Value, name: string, c: number): Value {
    const gamma = this.b.floats(
      `${name}.gamma`,
      [c],
      this.rand(c, 0.2).map((v) => 1 + v),
    );
    const beta = this.b.floats(`${name}.beta`, [c], this.rand(c, 0.1));
    const mean = this.b.floats(`${name}.mean`, [c], this.rand(c, 0.1));
    const variance = this.b.floats(
      `${name}.var`,
      [c],
      this.rand(c, 0.2).map((v) => 1 + v),
    );
    return this.b.op('BatchNormalization', [x, gamma, beta, mean, variance], { epsilon: 1e-5 }, { name });
  }

  relu(x: Value): Value {
    return this.b.op('Relu', [x]);
  }

  /** GlobalAveragePool → Flatten → Gemm(classes) as the output `logits`. */
  head(x: Value, c: number, classes = 5): Model {
    const p = this.b.op('GlobalAveragePool', [x]);
    const f = this.b.op('Flatten', [p], { axis: 1 });
    const w = this.b.floats('fc.w', [c, classes], this.rand(c * classes));
    const bias = this.b.floats('fc.b', [classes], this.rand(classes, 0.1));
    this.b.output(this.b.op('Gemm', [f, w, bias], {}, { name: 'fc' }), 'logits');
    return this.b.build();
  }
}

/** Stem, then a basic block at stride 2 whose shortcut is a 1×1 conv + BN: Add ties both branches. */
export function resnetBlock(): Model {
  const n = new Net(1);
  const x = n.relu(n.bn(n.conv(n.input(), 'stem', 3, 8), 'stem_bn', 8));
  const a = n.relu(n.bn(n.conv(x, 'b1_conv1', 8, 16, { stride: 2 }), 'b1_bn1', 16));
  const main = n.bn(n.conv(a, 'b1_conv2', 16, 16), 'b1_bn2', 16);
  const short = n.bn(n.conv(x, 'b1_down', 8, 16, { k: 1, stride: 2 }), 'b1_down_bn', 16);
  const y = n.relu(n.b.op('Add', [main, short], {}, { name: 'b1_add' }));
  const z = n.relu(n.conv(y, 'b2_conv', 16, 16));
  return n.head(n.b.op('Add', [z, y], {}, { name: 'b2_add' }), 16);
}

/** Dense block: each layer reads the concatenation of all before it. */
export function denseBlock(): Model {
  const n = new Net(2);
  const x0 = n.relu(n.conv(n.input(), 'conv0', 3, 8));
  const c1 = n.relu(n.conv(x0, 'dense1', 8, 4));
  const cat1 = n.b.op('Concat', [x0, c1], { axis: 1 }, { name: 'cat1' });
  const c2 = n.relu(n.conv(cat1, 'dense2', 12, 4));
  const cat2 = n.b.op('Concat', [cat1, c2], { axis: 1 }, { name: 'cat2' });
  const t = n.relu(n.conv(cat2, 'transition', 16, 8, { k: 1 }));
  return n.head(t, 8);
}

/** ShuffleNet unit: 1×1 conv, channel shuffle (Reshape → Transpose → Reshape), depthwise 3×3, grouped 1×1, 1×1. */
export function shuffleBlock(): Model {
  const n = new Net(3);
  const x = n.relu(n.conv(n.input(), 'conv0', 3, 8));
  const g = n.relu(n.conv(x, 'pw', 8, 8, { k: 1 }));
  const r1 = n.b.op('Reshape', [g, n.b.ints('shape1', [0, 2, 4, 16, 16])], {}, { name: 'shuffle_reshape1' });
  const t = n.b.op('Transpose', [r1], { perm: [0, 2, 1, 3, 4] }, { name: 'shuffle_transpose' });
  const r2 = n.b.op('Reshape', [t, n.b.ints('shape2', [0, 8, 16, 16])], {}, { name: 'shuffle_reshape2' });
  const d = n.conv(r2, 'depthwise', 8, 8, { group: 8 });
  const gc = n.relu(n.conv(d, 'gconv', 8, 8, { k: 1, group: 2 }));
  const y = n.relu(n.conv(gc, 'conv1', 8, 8, { k: 1 }));
  return n.head(y, 8);
}

/** Inception module: 1×1, 3×3 and pool→1×1 branches concatenated. */
export function inceptionBlock(): Model {
  const n = new Net(4);
  const x = n.relu(n.conv(n.input(), 'stem', 3, 8));
  const b1 = n.relu(n.conv(x, 'branch1x1', 8, 4, { k: 1, bias: true }));
  const b2 = n.relu(n.conv(n.relu(n.conv(x, 'branch3x3_reduce', 8, 4, { k: 1 })), 'branch3x3', 4, 6, { bias: true }));
  const pool = n.b.op('MaxPool', [x], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] });
  const b3 = n.relu(n.conv(pool, 'branch_pool', 8, 2, { k: 1, bias: true }));
  const cat = n.b.op('Concat', [b1, b2, b3], { axis: 1 }, { name: 'inception_concat' });
  return n.head(n.relu(n.conv(cat, 'after', 12, 8)), 8);
}

/** MBConv: expand 1×1, depthwise 3×3, squeeze-excite (GAP → reduce → Relu → expand → Sigmoid → Mul), project 1×1. */
export function efficientBlock(): Model {
  const n = new Net(5);
  const x = n.relu(n.conv(n.input(), 'stem', 3, 8));
  const e = n.relu(n.conv(x, 'expand', 8, 16, { k: 1 }));
  const d = n.relu(n.conv(e, 'depthwise', 16, 16, { group: 16 }));
  const s = n.b.op('GlobalAveragePool', [d], {}, { name: 'se_pool' });
  const r = n.relu(n.conv(s, 'se_reduce', 16, 4, { k: 1, bias: true }));
  const g = n.b.op('Sigmoid', [n.conv(r, 'se_expand', 4, 16, { k: 1 })]);
  const m = n.b.op('Mul', [d, g], {}, { name: 'se_mul' });
  const p = n.conv(m, 'project', 16, 8, { k: 1 });
  return n.head(n.b.op('Add', [p, x], {}, { name: 'residual' }), 8);
}

/** A Split of one conv's channels into two branches joined again by Concat. */
export function splitBlock(): Model {
  const n = new Net(6);
  const x = n.relu(n.conv(n.input(), 'conv0', 3, 12));
  const [a, b] = n.b.opMulti('Split', [x, n.b.ints('split_sizes', [4, 8])], { axis: 1 }, { name: 'split', outputs: 2 });
  const a2 = n.relu(n.conv(a, 'left', 4, 4));
  const cat = n.b.op('Concat', [a2, b], { axis: 1 }, { name: 'join' });
  return n.head(n.relu(n.conv(cat, 'after', 12, 6)), 6);
}

/** Conv → Flatten → Gemm(64) → Relu → Gemm(5): a flattened channel is a block of H·W features. */
export function flattenMlp(): Model {
  const n = new Net(8);
  const x = n.relu(n.conv(n.input(), 'conv0', 3, 6, { stride: 4 }));
  const f = n.b.op('Flatten', [x], { axis: 1 }, { name: 'flatten' });
  const h = n.relu(
    n.b.op('Gemm', [f, n.b.floats('fc1.w', [96, 16], n.rand(96 * 16)), n.b.floats('fc1.b', [16], n.rand(16))], {}, { name: 'fc1' }),
  );
  const y = n.b.op('Gemm', [h, n.b.floats('fc2.w', [5, 16], n.rand(80))], { transB: 1 }, { name: 'fc2' });
  n.b.output(y, 'logits');
  return n.b.build();
}

/** The same MLP behind a Reshape to [N, 96] with the feature count spelled out (it must follow the cut). */
export function reshapeMlp(): Model {
  const n = new Net(10);
  const x = n.relu(n.conv(n.input(), 'conv0', 3, 6, { stride: 4 }));
  const f = n.b.op('Reshape', [x, n.b.ints('flat_shape', [0, 96])], {}, { name: 'reshape' });
  const h = n.relu(n.b.op('MatMul', [f, n.b.floats('fc1.w', [96, 16], n.rand(96 * 16))], {}, { name: 'fc1' }));
  n.b.output(n.b.op('Gemm', [h, n.b.floats('fc2.w', [16, 5], n.rand(80))], {}, { name: 'fc2' }), 'logits');
  return n.b.build();
}

/** A grouped (not depthwise) conv reading a conv's channels: its groups would mix if channels went. */
export function groupedBlock(): Model {
  const n = new Net(9);
  const x = n.relu(n.conv(n.input(), 'conv0', 3, 8));
  const g = n.relu(n.conv(x, 'gconv', 8, 8, { k: 3, group: 2 }));
  return n.head(n.relu(n.conv(g, 'conv1', 8, 8, { k: 1 })), 8);
}

export const ARCHITECTURES: Record<string, () => Model> = {
  resnet: resnetBlock,
  densenet: denseBlock,
  shufflenet: shuffleBlock,
  googlenet: inceptionBlock,
  efficientnet: efficientBlock,
  split: splitBlock,
  'flatten-mlp': flattenMlp,
  grouped: groupedBlock,
  'reshape-mlp': reshapeMlp,
};
