/**
 * Built-in architectures for Fashion-MNIST (input `input` N×1×28×28, output `logits` N×10).
 * Weights are seeded He-normal: the models are untrained until `mobilize train` trains them.
 */
import type { Model } from '../ir/graph.js';
import { NetBuilder } from './layers.js';

/** conv-bn-relu-pool ×2 + fully connected: 16 and 32 channels, 10 classes (20 k parameters, 1.0 M MACs). */
export function buildFmnistCnn(seed = 0): Model {
  const net = new NetBuilder({ name: 'fmnist_cnn', seed });
  let h = net.input('input', [1, 28, 28]);
  h = net.maxPool(net.convBnRelu(h, 'conv1', 16), 'pool1');
  h = net.maxPool(net.convBnRelu(h, 'conv2', 32), 'pool2');
  h = net.flatten(h, 'flatten', 32 * 7 * 7);
  net.output(net.dense(h, 'fc', 10), 'logits');
  return net.build();
}

/**
 * The small student: a 3×3 convolution and max-pool, then two depthwise-separable blocks (the
 * second at stride 2), global average pooling and a 64→10 layer: 16/32/64 channels, 4 k
 * parameters and 0.36 M MACs — a fifth of fmnist-cnn's weights and a third of its work.
 */
export function buildFmnistSmall(seed = 0): Model {
  const net = new NetBuilder({ name: 'fmnist_small', seed });
  let h = net.input('input', [1, 28, 28]);
  h = net.maxPool(net.convBnRelu(h, 'conv1', 16), 'pool1');
  h = net.depthwiseSeparable(h, 'ds1', 32);
  h = net.depthwiseSeparable(h, 'ds2', 64, { stride: 2 });
  net.output(net.dense(net.globalAveragePool(h, 'gap'), 'fc', 10), 'logits');
  return net.build();
}

/** The built-in models by the name the commands take. */
export const BUILTIN_MODELS: Readonly<Record<string, (seed?: number) => Model>> = {
  'fmnist-cnn': buildFmnistCnn,
  'fmnist-small': buildFmnistSmall,
};
