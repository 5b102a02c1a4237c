/**
 * Built-in architectures for Fashion-MNIST (input `input` N×1×28×28, output `logits` N×10).
 * Weights are seeded He-normal: the models are untrained until `mobilize train` trains them.
 */
import { ModelBuilder } from '../ir/builder.js';
import type { Model, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { Random } from '../util/random.js';

function heNormal(rng: Random, dims: number[], fanIn: number): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const std = Math.sqrt(2 / fanIn);
  return Tensor.from(
    'float32',
    dims,
    Float32Array.from({ length: n }, () => rng.normal() * std),
  );
}

function convBnRelu(b: ModelBuilder, rng: Random, x: Value, name: string, cin: number, cout: number): Value {
  const w = b.constant(`${name}.weight`, heNormal(rng, [cout, cin, 3, 3], cin * 9));
  const bias = b.floats(`${name}.bias`, [cout], new Float32Array(cout));
  const conv = b.op('Conv', [x, w, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name });
  const bn = b.op(
    'BatchNormalization',
    [
      conv,
      b.floats(`${name}.bn.scale`, [cout], new Float32Array(cout).fill(1)),
      b.floats(`${name}.bn.bias`, [cout], new Float32Array(cout)),
      b.floats(`${name}.bn.mean`, [cout], new Float32Array(cout)),
      b.floats(`${name}.bn.var`, [cout], new Float32Array(cout).fill(1)),
    ],
    { epsilon: 1e-5 },
    { name: `${name}.bn` },
  );
  return b.op('Relu', [bn], {}, { name: `${name}.relu` });
}

/** conv-bn-relu-pool ×2 + fully connected: 16 and 32 channels, 10 classes. */
export function buildFmnistCnn(seed = 0): Model {
  const rng = new Random(seed);
  const b = new ModelBuilder({ opset: 17, name: 'fmnist_cnn' });
  const x = b.input('input', 'float32', ['N', 1, 28, 28]);
  let h = convBnRelu(b, rng, x, 'conv1', 1, 16);
  h = b.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool1' });
  h = convBnRelu(b, rng, h, 'conv2', 16, 32);
  h = b.op('MaxPool', [h], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool2' });
  h = b.op('Flatten', [h], { axis: 1 }, { name: 'flatten' });
  const fcW = b.constant('fc.weight', heNormal(rng, [10, 32 * 7 * 7], 32 * 7 * 7));
  const fcB = b.floats('fc.bias', [10], new Float32Array(10));
  const logits = b.op('Gemm', [h, fcW, fcB], { transB: 1 }, { name: 'fc' });
  b.output(logits, 'logits', { kind: 'tensor', dtype: 'float32', shape: ['N', 10] });
  return b.build();
}
