/** Small graphs and data for the quantization tests. */
import { ArrayDataset } from '../../src/data/arrays.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/graph.js';
import { printNode } from '../../src/ir/print.js';
import { Tensor } from '../../src/ir/tensor.js';
import { Random } from '../../src/util/random.js';

export function uniform(dims: number[], scale: number, seed: number): Tensor {
  const rng = new Random(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return Tensor.from(
    'float32',
    dims,
    Float32Array.from({ length: n }, () => (rng.next() - 0.5) * 2 * scale),
  );
}

/** Calibration data: n samples of the given dims, uniform in ±1. */
export function calibData(n: number, dims: number[], seed = 11): ArrayDataset {
  return new ArrayDataset('calib', uniform([n, ...dims], 1, seed));
}

/** The graph as lines, one per node (printNode), for golden comparisons. */
export function lines(m: Model): string[] {
  return m.graph.nodes.map((n) => printNode(n, {}, ''));
}

export function ops(m: Model): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of m.graph.nodes) {
    const k = n.domain ? `${n.domain}.${n.opType}` : n.opType;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/**
 * x → Conv → Relu → MaxPool → Conv(1×1) → Add(·, pooled) → GlobalAveragePool → Flatten → Gemm:
 * the shapes of a residual CNN in miniature.
 */
export function residualNet(seed = 1): Model {
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', ['N', 3, 8, 8]);
  const c1 = b.op(
    'Conv',
    [x, b.constant('w1', uniform([4, 3, 3, 3], 0.5, seed)), b.constant('b1', uniform([4], 0.5, seed + 1))],
    {
      kernel_shape: [3, 3],
      pads: [1, 1, 1, 1],
    },
    { name: 'conv1', outputNames: ['c1'] },
  );
  const r1 = b.op('Relu', [c1], {}, { name: 'relu1', outputNames: ['r1'] });
  const p1 = b.op('MaxPool', [r1], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'pool', outputNames: ['p1'] });
  const c2 = b.op(
    'Conv',
    [p1, b.constant('w2', uniform([4, 4, 1, 1], 0.5, seed + 2)), b.constant('b2', uniform([4], 0.5, seed + 3))],
    {
      kernel_shape: [1, 1],
    },
    { name: 'conv2', outputNames: ['c2'] },
  );
  const sum = b.op('Add', [c2, p1], {}, { name: 'add', outputNames: ['sum'] });
  const g = b.op('GlobalAveragePool', [sum], {}, { name: 'gap', outputNames: ['g'] });
  const f = b.op('Flatten', [g], { axis: 1 }, { name: 'flatten', outputNames: ['f'] });
  const y = b.op(
    'Gemm',
    [f, b.constant('fc_w', uniform([5, 4], 0.5, seed + 4)), b.constant('fc_b', uniform([5], 0.5, seed + 5))],
    {
      transB: 1,
    },
    { name: 'fc', outputNames: ['y'] },
  );
  b.output(y, 'y');
  return b.build();
}
