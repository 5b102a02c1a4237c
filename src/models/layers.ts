/**
 * Layers for building small networks in code, on top of ModelBuilder: each call adds the nodes
 * and seeded weights of one layer (He-normal convolution and dense weights, zero biases,
 * BatchNormalization at identity with fresh running statistics) and keeps track of channel
 * counts, so an architecture reads as a list of layers:
 *
 *   const net = new NetBuilder({ name: 'tiny', seed: 0 });
 *   let h = net.input('input', [1, 28, 28]);
 *   h = net.convBnRelu(h, 'conv1', 16);
 *   h = net.maxPool(h, 'pool1');
 *   h = net.depthwiseSeparable(h, 'ds1', 32);
 *   net.output(net.dense(net.globalAveragePool(h, 'gap'), 'fc', 10), 'logits');
 *   const model = net.build();
 *
 * Browser-safe.
 */
import { ModelBuilder } from '../ir/builder.js';
import type { Model, Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { Random } from '../util/random.js';

export function heNormal(rng: Random, dims: number[], fanIn: number): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const std = Math.sqrt(2 / fanIn);
  return Tensor.from(
    'float32',
    dims,
    Float32Array.from({ length: n }, () => rng.normal() * std),
  );
}

export interface ConvOptions {
  /** Square kernel size (default 3). */
  kernel?: number;
  stride?: number;
  /** Channel groups (default 1; the input's channels for a depthwise convolution). */
  groups?: number;
  /** Padding on each side (default kernel/2, rounded down: "same" at stride 1). */
  pad?: number;
  /** A bias input (default true). */
  bias?: boolean;
}

export interface NetOptions {
  name?: string;
  /** Seeds the weights (default 0). */
  seed?: number;
  /** Default 17. */
  opset?: number;
}

export class NetBuilder {
  readonly builder: ModelBuilder;
  readonly rng: Random;
  /** Channels (or features) of each value the layers made. */
  private readonly channels = new Map<Value, number>();
  private spatial = 0;

  constructor(options: NetOptions = {}) {
    this.builder = new ModelBuilder({ opset: options.opset ?? 17, name: options.name ?? 'net' });
    this.rng = new Random(options.seed ?? 0);
  }

  /** The data input N × dims (channels first: C×H×W for images). */
  input(name: string, dims: number[]): Value {
    const v = this.builder.input(name, 'float32', ['N', ...dims]);
    this.channels.set(v, dims[0]);
    this.spatial = dims.length - 1;
    return v;
  }

  channelsOf(v: Value): number {
    const c = this.channels.get(v);
    if (c === undefined) throw new Error(`NetBuilder: ${v.name} was not made by a layer, so its channel count is unknown`);
    return c;
  }

  private mark(v: Value, c: number): Value {
    this.channels.set(v, c);
    return v;
  }

  conv(x: Value, name: string, cout: number, options: ConvOptions = {}): Value {
    const cin = this.channelsOf(x);
    const k = options.kernel ?? 3;
    const groups = options.groups ?? 1;
    const pad = options.pad ?? Math.floor(k / 2);
    if (cin % groups !== 0 || cout % groups !== 0)
      throw new Error(`NetBuilder: ${name}: ${cin}→${cout} channels do not split into ${groups} groups`);
    const kdims = new Array(this.spatial).fill(k);
    const fanIn = (cin / groups) * k ** this.spatial;
    const b = this.builder;
    const w = b.constant(`${name}.weight`, heNormal(this.rng, [cout, cin / groups, ...kdims], fanIn));
    const inputs = [x, w];
    if (options.bias ?? true) inputs.push(b.floats(`${name}.bias`, [cout], new Float32Array(cout)));
    const attrs: Record<string, number[] | number> = { kernel_shape: kdims, pads: new Array(2 * this.spatial).fill(pad) };
    if ((options.stride ?? 1) !== 1) attrs.strides = new Array(this.spatial).fill(options.stride);
    if (groups !== 1) attrs.group = groups;
    return this.mark(b.op('Conv', inputs, attrs, { name }), cout);
  }

  batchNorm(x: Value, name: string): Value {
    const c = this.channelsOf(x);
    const b = this.builder;
    const y = b.op(
      'BatchNormalization',
      [
        x,
        b.floats(`${name}.scale`, [c], new Float32Array(c).fill(1)),
        b.floats(`${name}.bias`, [c], new Float32Array(c)),
        b.floats(`${name}.mean`, [c], new Float32Array(c)),
        b.floats(`${name}.var`, [c], new Float32Array(c).fill(1)),
      ],
      { epsilon: 1e-5 },
      { name },
    );
    return this.mark(y, c);
  }

  relu(x: Value, name: string): Value {
    return this.mark(this.builder.op('Relu', [x], {}, { name }), this.channelsOf(x));
  }

  /** Convolution (bias kept, as PyTorch's default) → BatchNormalization → ReLU, named `name`, `name.bn`, `name.relu`. */
  convBnRelu(x: Value, name: string, cout: number, options: ConvOptions = {}): Value {
    return this.relu(this.batchNorm(this.conv(x, name, cout, options), `${name}.bn`), `${name}.relu`);
  }

  /** MobileNet's block: depthwise k×k (with the stride) → BN → ReLU, then pointwise 1×1 → BN → ReLU. */
  depthwiseSeparable(x: Value, name: string, cout: number, options: { stride?: number; kernel?: number } = {}): Value {
    const cin = this.channelsOf(x);
    const dw = this.convBnRelu(x, `${name}.dw`, cin, { groups: cin, stride: options.stride, kernel: options.kernel, bias: false });
    return this.convBnRelu(dw, `${name}.pw`, cout, { kernel: 1, bias: false });
  }

  maxPool(x: Value, name: string, size = 2): Value {
    const k = new Array(this.spatial).fill(size);
    return this.mark(this.builder.op('MaxPool', [x], { kernel_shape: k, strides: k }, { name }), this.channelsOf(x));
  }

  /** Global average pooling, flattened to N × C. */
  globalAveragePool(x: Value, name: string): Value {
    const p = this.builder.op('GlobalAveragePool', [x], {}, { name });
    return this.mark(this.builder.op('Flatten', [p], { axis: 1 }, { name: `${name}.flatten` }), this.channelsOf(x));
  }

  /** Flattens N × C × … to N × features, given the feature count. */
  flatten(x: Value, name: string, features: number): Value {
    return this.mark(this.builder.op('Flatten', [x], { axis: 1 }, { name }), features);
  }

  /** Fully connected: Gemm with the weight stored [out, in] (transB), as PyTorch's Linear. */
  dense(x: Value, name: string, out: number): Value {
    const fin = this.channelsOf(x);
    const b = this.builder;
    const w = b.constant(`${name}.weight`, heNormal(this.rng, [out, fin], fin));
    const bias = b.floats(`${name}.bias`, [out], new Float32Array(out));
    return this.mark(b.op('Gemm', [x, w, bias], { transB: 1 }, { name }), out);
  }

  /** Marks `v` as the output `name` (N × features). */
  output(v: Value, name: string): Value {
    return this.builder.output(v, name, { kind: 'tensor', dtype: 'float32', shape: ['N', this.channelsOf(v)] });
  }

  build(): Model {
    return this.builder.build();
  }
}
