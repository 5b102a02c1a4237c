/**
 * Golden tests for the fusions into Conv and Gemm: BatchNormalization, per-channel Mul/Add, row
 * biases, Pad into the node's pads, and the canonical Flatten before Gemm.
 */
import { describe, it } from 'node:test';
import type { ModelBuilder } from '../../src/ir/builder.js';
import type { Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { fuseConvBn } from '../../src/passes/fuse-conv-bn.js';
import { fuseConvMulAdd } from '../../src/passes/fuse-conv-mul-add.js';
import { fuseGemmBn } from '../../src/passes/fuse-gemm-bn.js';
import { fuseMatmulAdd } from '../../src/passes/fuse-matmul-add.js';
import { fusePad } from '../../src/passes/fuse-pad.js';
import { normalizeGemmInput } from '../../src/passes/normalize-gemm-input.js';
import { checkPass } from './helpers.js';

/** Deterministic values in [-1, 1) (a 32-bit linear congruential sequence). */
function values(n: number, seed: number): number[] {
  let s = (seed * 7919 + 17) >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

function floats(b: ModelBuilder, name: string, dims: number[], seed: number): Value {
  const size = dims.reduce((a, d) => a * d, 1);
  return b.floats(name, dims, values(size, seed));
}

/** BatchNormalization parameters for `c` channels (positive variances). */
function bnParams(b: ModelBuilder, c: number, seed: number): Value[] {
  const variance = values(c, seed + 3).map((v) => Math.abs(v) + 0.5);
  return [
    floats(b, 'gamma', [c], seed),
    floats(b, 'beta', [c], seed + 1),
    floats(b, 'mean', [c], seed + 2),
    b.floats('var', [c], variance),
  ];
}

describe('fuse-conv-bn', () => {
  it('folds BatchNormalization into a Conv without bias; the Conv keeps its name and takes the output name', async () => {
    await checkPass(fuseConvBn, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', ['N', 4, 6, 6]);
        const c = b.op('Conv', [x, floats(b, 'w', [3, 4, 3, 3], 1)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv1' });
        b.output(b.op('BatchNormalization', [c, ...bnParams(b, 3, 2)], { epsilon: 1e-3 }), 'y');
      },
      expected: `
graph g (%x: float32[N,4,6,6]) -> (%y: float32[N,3,6,6]) {
  init %w_fused: float32[3,4,3,3]
  init %w_fused_bias: float32[3]
  %y = Conv "conv1"(%x, %w_fused, %w_fused_bias) {kernel_shape=[3,3], pads=[1,1,1,1]}
}
`,
    });
  });

  it('folds into a grouped ConvTranspose with a bias (output channels are W dim 1 × group)', async () => {
    await checkPass(fuseConvBn, {
      opset: 17,
      build(b) {
        const x = b.input('x', 'float32', [1, 4, 5, 5]);
        const c = b.op('ConvTranspose', [x, floats(b, 'w', [4, 3, 2, 2], 1), floats(b, 'bias', [6], 9)], {
          kernel_shape: [2, 2],
          strides: [2, 2],
          group: 2,
        });
        b.output(b.op('Relu', [b.op('BatchNormalization', [c, ...bnParams(b, 6, 2)])]), 'y');
      },
      expected: `
graph g (%x: float32[1,4,5,5]) -> (%y: float32[1,6,10,10]) {
  init %w_fused: float32[4,3,2,2]
  init %bias_fused: float32[6]
  %convtranspose_out = ConvTranspose(%x, %w_fused, %bias_fused) {group=2, kernel_shape=[2,2], strides=[2,2]}
  %y = Relu(%convtranspose_out)
}
`,
    });
  });

  it('leaves a BatchNormalization whose conv output has a second reader, or whose statistics are inputs', async () => {
    await checkPass(fuseConvBn, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', [1, 2, 4, 4]);
        const mean = b.input('m', 'float32', [2]);
        const c = b.op('Conv', [x, floats(b, 'w', [2, 2, 1, 1], 1)], { kernel_shape: [1, 1] });
        const [gamma, beta, , variance] = bnParams(b, 2, 2);
        b.output(b.op('BatchNormalization', [c, ...bnParams(b, 2, 5)]), 'y');
        b.output(b.op('Relu', [c]), 'z');
        const c2 = b.op('Conv', [x, floats(b, 'w2', [2, 2, 1, 1], 3)], { kernel_shape: [1, 1] });
        b.output(b.op('BatchNormalization', [c2, gamma, beta, mean, variance]), 'u');
      },
      expected: `
graph g (%x: float32[1,2,4,4], %m: float32[2]) -> (%y: float32[1,2,4,4], %z: float32[1,2,4,4], %u: float32[1,2,4,4]) {
  init %w: float32[2,2,1,1]
  init %gamma: float32[2]
  init %beta: float32[2]
  init %var: float32[2]
  init %gamma_1: float32[2]
  init %beta_2: float32[2]
  init %mean_3: float32[2]
  init %var_4: float32[2]
  init %w2: float32[2,2,1,1]
  %conv_out = Conv(%x, %w) {kernel_shape=[1,1]}
  %y = BatchNormalization(%conv_out, %gamma_1, %beta_2, %mean_3, %var_4)
  %z = Relu(%conv_out)
  %conv_out_5 = Conv(%x, %w2) {kernel_shape=[1,1]}
  %u = BatchNormalization(%conv_out_5, %gamma, %beta, %m, %var)
}
`,
    });
  });
  it('never folds into quantized weights: a DequantizeLinear output is not a constant', async () => {
    await checkPass(fuseConvBn, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', [1, 2, 4, 4]);
        const w = b.op('DequantizeLinear', [b.constant('q', Tensor.from('int8', [2, 2, 1, 1], [1, -2, 3, 4])), b.floats('s', [], [0.5])]);
        const c = b.op('Conv', [x, w], { kernel_shape: [1, 1] });
        b.output(b.op('BatchNormalization', [c, ...bnParams(b, 2, 2)]), 'y');
      },
      expected: `
graph g (%x: float32[1,2,4,4]) -> (%y: float32[1,2,4,4]) {
  init %q: int8[2,2,1,1]
  init %s: float32[]
  init %gamma: float32[2]
  init %beta: float32[2]
  init %mean: float32[2]
  init %var: float32[2]
  %dequantizelinear_out = DequantizeLinear(%q, %s)
  %conv_out = Conv(%x, %dequantizelinear_out) {kernel_shape=[1,1]}
  %y = BatchNormalization(%conv_out, %gamma, %beta, %mean, %var)
}
`,
    });
  });
});

describe('fuse-conv-mul-add', () => {
  it('folds a per-channel Mul (constant first) and a one-element Add into weights and bias', async () => {
    await checkPass(fuseConvMulAdd, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', ['N', 3, 5, 5]);
        const c = b.op('Conv', [x, floats(b, 'w', [4, 3, 3, 3], 1), floats(b, 'bias', [4], 2)], { kernel_shape: [3, 3] }, { name: 'conv' });
        const m = b.op('Mul', [floats(b, 'scale', [1, 4, 1, 1], 3), c]);
        const a = b.op('Add', [m, b.floats('shift', [1], [0.25])]);
        b.output(b.op('Relu', [b.op('Add', [a, floats(b, 'shift2', [4, 1, 1], 4)])]), 'y');
      },
      expected: `
graph g (%x: float32[N,3,5,5]) -> (%y: float32[N,4,3,3]) {
  init %w_fused: float32[4,3,3,3]
  init %bias_fused_2: float32[4]
  %conv_out = Conv "conv"(%x, %w_fused, %bias_fused_2) {kernel_shape=[3,3]}
  %y = Relu(%conv_out)
}
`,
    });
  });

  it('leaves a Mul that varies over space, and an Add whose conv output is read twice', async () => {
    await checkPass(fuseConvMulAdd, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', [1, 2, 3, 3]);
        const c = b.op('Conv', [x, floats(b, 'w', [2, 2, 1, 1], 1)], { kernel_shape: [1, 1] });
        b.output(b.op('Mul', [c, floats(b, 'spatial', [1, 1, 3, 3], 2)]), 'y');
        const c2 = b.op('Conv', [x, floats(b, 'w2', [2, 2, 1, 1], 3)], { kernel_shape: [1, 1] });
        b.output(b.op('Add', [c2, floats(b, 'shift', [2, 1, 1], 4)]), 'z');
        b.output(b.op('Relu', [c2]), 'u');
      },
      expected: `
graph g (%x: float32[1,2,3,3]) -> (%y: float32[1,2,3,3], %z: float32[1,2,3,3], %u: float32[1,2,3,3]) {
  init %w: float32[2,2,1,1]
  init %spatial: float32[1,1,3,3]
  init %w2: float32[2,2,1,1]
  init %shift: float32[2,1,1]
  %conv_out = Conv(%x, %w) {kernel_shape=[1,1]}
  %y = Mul(%conv_out, %spatial)
  %conv_out_1 = Conv(%x, %w2) {kernel_shape=[1,1]}
  %z = Add(%conv_out_1, %shift)
  %u = Relu(%conv_out_1)
}
`,
    });
  });
  it('folds a whole ConvTranspose → Add → BatchNormalization → Mul chain together with fuse-conv-bn', async () => {
    await checkPass([fuseConvBn, fuseConvMulAdd], {
      opset: 11,
      build(b) {
        const x = b.input('x', 'float32', ['N', 2, 3, 3]);
        const c = b.op('ConvTranspose', [x, floats(b, 'w', [2, 3, 2, 2], 1)], { kernel_shape: [2, 2], strides: [2, 2] }, { name: 'up' });
        const a = b.op('Add', [c, floats(b, 'bias', [1, 3, 1, 1], 2)]);
        const n = b.op('BatchNormalization', [a, ...bnParams(b, 3, 3)]);
        b.output(b.op('Mul', [n, b.floats('half', [], [0.5])]), 'y');
      },
      expected: `
graph g (%x: float32[N,2,3,3]) -> (%y: float32[N,3,6,6]) {
  init %w_fused_2: float32[2,3,2,2]
  init %w_fused_bias_3: float32[3]
  %y = ConvTranspose "up"(%x, %w_fused_2, %w_fused_bias_3) {kernel_shape=[2,2], strides=[2,2]}
}
`,
    });
  });
});

describe('fuse-gemm-bn', () => {
  it('folds BatchNormalization into a Gemm with transB, beta and a bias', async () => {
    await checkPass(fuseGemmBn, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', ['N', 5]);
        const g = b.op('Gemm', [x, floats(b, 'w', [3, 5], 1), floats(b, 'c', [3], 2)], { transB: 1, alpha: 0.5, beta: 2 }, { name: 'fc' });
        b.output(b.op('BatchNormalization', [g, ...bnParams(b, 3, 3)]), 'y');
      },
      expected: `
graph g (%x: float32[N,5]) -> (%y: float32[N,3]) {
  init %w_fused: float32[3,5]
  init %c_fused: float32[3]
  %y = Gemm "fc"(%x, %w_fused, %c_fused) {alpha=0.5, transB=1}
}
`,
    });
  });

  it('turns MatMul of a 2-D input by constant weights, then BatchNormalization, into a Gemm', async () => {
    await checkPass(fuseGemmBn, {
      opset: 17,
      build(b) {
        const x = b.input('x', 'float32', [2, 4]);
        const m = b.op('MatMul', [x, floats(b, 'w', [4, 3], 1)], {}, { name: 'mm' });
        b.output(b.op('Relu', [b.op('BatchNormalization', [m, ...bnParams(b, 3, 3)])]), 'y');
      },
      expected: `
graph g (%x: float32[2,4]) -> (%y: float32[2,3]) {
  init %w_fused: float32[4,3]
  init %w_fused_bias: float32[3]
  %mm_out = Gemm "mm"(%x, %w_fused, %w_fused_bias)
  %y = Relu(%mm_out)
}
`,
    });
  });

  it('leaves a 3-D MatMul: BatchNormalization normalizes its dim 1, not the features', async () => {
    await checkPass(fuseGemmBn, {
      opset: 17,
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        const m = b.op('MatMul', [x, floats(b, 'w', [4, 5], 1)]);
        b.output(b.op('BatchNormalization', [m, ...bnParams(b, 3, 3)]), 'y');
      },
      expected: `
graph g (%x: float32[2,3,4]) -> (%y: float32[2,3,5]) {
  init %w: float32[4,5]
  init %gamma: float32[3]
  init %beta: float32[3]
  init %mean: float32[3]
  init %var: float32[3]
  %matmul_out = MatMul(%x, %w)
  %y = BatchNormalization(%matmul_out, %gamma, %beta, %mean, %var)
}
`,
    });
  });
});

describe('fuse-matmul-add', () => {
  it('turns MatMul + bias into Gemm, whichever side of the Add the bias is on', async () => {
    await checkPass(fuseMatmulAdd, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', ['N', 4]);
        const m = b.op('MatMul', [x, floats(b, 'w', [4, 3], 1)], {}, { name: 'fc1' });
        const h = b.op('Relu', [b.op('Add', [floats(b, 'b1', [3], 2), m])]);
        const m2 = b.op('MatMul', [h, floats(b, 'w2', [3, 2], 3)], {}, { name: 'fc2' });
        b.output(b.op('Add', [m2, floats(b, 'b2', [1, 2], 4)]), 'y');
      },
      expected: `
graph g (%x: float32[N,4]) -> (%y: float32[N,2]) {
  init %w: float32[4,3]
  init %b1: float32[3]
  init %w2: float32[3,2]
  init %b2: float32[1,2]
  %fc1_out = Gemm "fc1"(%x, %w, %b1)
  %relu_out = Relu(%fc1_out)
  %y = Gemm "fc2"(%relu_out, %w2, %b2)
}
`,
    });
  });

  it('leaves a 3-D MatMul, a full [M, N] bias and a MatMul read twice', async () => {
    await checkPass(fuseMatmulAdd, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        b.output(b.op('Add', [b.op('MatMul', [x, floats(b, 'w', [4, 3], 1)]), floats(b, 'b1', [3], 2)]), 'y');
        const x2 = b.input('x2', 'float32', [2, 4]);
        b.output(b.op('Add', [b.op('MatMul', [x2, floats(b, 'w2', [4, 3], 3)]), floats(b, 'b2', [2, 3], 4)]), 'z');
        const m = b.op('MatMul', [x2, floats(b, 'w3', [4, 3], 5)]);
        b.output(b.op('Add', [m, floats(b, 'b3', [3], 6)]), 'u');
        b.output(b.op('Relu', [m]), 'v');
      },
      expected: `
graph g (%x: float32[2,3,4], %x2: float32[2,4]) -> (%y: float32[2,3,3], %z: float32[2,3], %u: float32[2,3], %v: float32[2,3]) {
  init %w: float32[4,3]
  init %b1: float32[3]
  init %w2: float32[4,3]
  init %b2: float32[2,3]
  init %w3: float32[4,3]
  init %b3: float32[3]
  %matmul_out = MatMul(%x, %w)
  %y = Add(%matmul_out, %b1)
  %matmul_out_1 = MatMul(%x2, %w2)
  %z = Add(%matmul_out_1, %b2)
  %matmul_out_2 = MatMul(%x2, %w3)
  %u = Add(%matmul_out_2, %b3)
  %v = Relu(%matmul_out_2)
}
`,
    });
  });
});

describe('fuse-pad', () => {
  it('moves a zero Pad (opset 13, pads as an input) into a Conv that already pads', async () => {
    await checkPass(fusePad, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', ['N', 2, 5, 5]);
        const p = b.op('Pad', [x, b.ints('pads', [0, 0, 1, 2, 0, 0, 3, 0])]);
        b.output(b.op('Conv', [p, floats(b, 'w', [3, 2, 3, 3], 1)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, { name: 'conv' }), 'y');
      },
      expected: `
graph g (%x: float32[N,2,5,5]) -> (%y: float32[N,3,9,7]) {
  init %w: float32[3,2,3,3]
  %y = Conv "conv"(%x, %w) {kernel_shape=[3,3], pads=[2,3,4,1]}
}
`,
    });
  });

  it('moves a Pad (opset 10, pads as an attribute) into an AveragePool that counts its padding', async () => {
    await checkPass(fusePad, {
      opset: 10,
      build(b) {
        const x = b.input('x', 'float32', [1, 2, 5, 5]);
        const p = b.op('Pad', [x], { pads: [0, 0, 1, 1, 0, 0, 1, 1] });
        b.output(b.op('AveragePool', [p], { kernel_shape: [3, 3], count_include_pad: 1 }), 'y');
      },
      expected: `
graph g (%x: float32[1,2,5,5]) -> (%y: float32[1,2,5,5]) {
  %y = AveragePool(%x) {count_include_pad=1, kernel_shape=[3,3], pads=[1,1,1,1]}
}
`,
    });
  });

  it('moves a −∞ Pad into a MaxPool, and an opset-18 Pad with axes into a Conv', async () => {
    await checkPass(fusePad, {
      opset: 18,
      build(b) {
        const x = b.input('x', 'float32', [1, 2, 5, 5]);
        const p = b.op('Pad', [x, b.ints('pads', [0, 0, 1, 1, 0, 0, 1, 1]), b.floats('ninf', [], [Number.NEGATIVE_INFINITY])]);
        const m = b.op('MaxPool', [p], { kernel_shape: [2, 2], strides: [2, 2] });
        const q = b.op('Pad', [m, b.ints('pads2', [1, 0]), null, b.ints('axes', [-1])]);
        b.output(b.op('Conv', [q, floats(b, 'w', [2, 2, 1, 2], 1)], { kernel_shape: [1, 2] }), 'y');
      },
      expected: `
graph g (%x: float32[1,2,5,5]) -> (%y: float32[1,2,3,3]) {
  init %w: float32[2,2,1,2]
  %maxpool_out = MaxPool(%x) {kernel_shape=[2,2], pads=[1,1,1,1], strides=[2,2]}
  %y = Conv(%maxpool_out, %w) {kernel_shape=[1,2], pads=[0,1,0,0]}
}
`,
    });
  });

  it('leaves a non-zero Pad before a Conv, a channel Pad, a reflect Pad, and a Pad before an AveragePool that does not count padding', async () => {
    await checkPass(fusePad, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', [1, 2, 5, 5]);
        const w = floats(b, 'w', [2, 2, 3, 3], 1);
        const conv = { kernel_shape: [3, 3] };
        const one = b.op('Pad', [x, b.ints('pads', [0, 0, 1, 1, 0, 0, 1, 1]), b.floats('one', [], [1])]);
        b.output(b.op('Conv', [one, w], conv), 'a');
        const channel = b.op('Pad', [x, b.ints('cpads', [0, 1, 0, 0, 0, 1, 0, 0])]);
        b.output(b.op('Conv', [channel, floats(b, 'w4', [2, 4, 3, 3], 2)], conv), 'b');
        const reflect = b.op('Pad', [x, b.ints('rpads', [0, 0, 1, 1, 0, 0, 1, 1])], { mode: 'reflect' });
        b.output(b.op('Conv', [reflect, w], conv), 'c');
        const avg = b.op('Pad', [x, b.ints('apads', [0, 0, 1, 1, 0, 0, 1, 1])]);
        b.output(b.op('AveragePool', [avg], { kernel_shape: [3, 3] }), 'd');
      },
      expected: `
graph g (%x: float32[1,2,5,5]) -> (%a: float32[1,2,5,5], %b: float32[1,2,3,3], %c: float32[1,2,5,5], %d: float32[1,2,5,5]) {
  init %w: float32[2,2,3,3]
  init %pads: int64[8]
  init %one: float32[]
  init %cpads: int64[8]
  init %w4: float32[2,4,3,3]
  init %rpads: int64[8]
  init %apads: int64[8]
  %pad_out = Pad(%x, %pads, %one)
  %a = Conv(%pad_out, %w) {kernel_shape=[3,3]}
  %pad_out_1 = Pad(%x, %cpads)
  %b = Conv(%pad_out_1, %w4) {kernel_shape=[3,3]}
  %pad_out_2 = Pad(%x, %rpads) {mode="reflect"}
  %c = Conv(%pad_out_2, %w) {kernel_shape=[3,3]}
  %pad_out_3 = Pad(%x, %apads)
  %d = AveragePool(%pad_out_3) {kernel_shape=[3,3]}
}
`,
    });
  });
});

describe('normalize-gemm-input', () => {
  it('turns Reshape(x, [0, -1]) before Gemm into Flatten(axis=1), and removes a Flatten of a 2-D input', async () => {
    await checkPass(normalizeGemmInput, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', ['N', 8, 1, 1]);
        const r = b.op('Reshape', [x, b.ints('shape', [0, -1])], {}, { name: 'reshape' });
        const h = b.op('Gemm', [r, floats(b, 'w', [8, 4], 1)]);
        const f = b.op('Flatten', [h], { axis: 1 });
        b.output(b.op('Gemm', [f, floats(b, 'w2', [2, 4], 2)], { transB: 1 }), 'y');
      },
      expected: `
graph g (%x: float32[N,8,1,1]) -> (%y: float32[N,2]) {
  init %w: float32[8,4]
  init %w2: float32[2,4]
  %reshape_out = Flatten "reshape"(%x) {axis=1}
  %gemm_out = Gemm(%reshape_out, %w)
  %y = Gemm(%gemm_out, %w2) {transB=1}
}
`,
    });
  });

  it('turns the Shape → Gather → Concat → Reshape of a symbolic batch into Flatten, and MatMul + Add into Gemm first', async () => {
    await checkPass([fuseMatmulAdd, normalizeGemmInput], {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', ['N', 6, 1, 1]);
        const n = b.op('Gather', [b.op('Shape', [x]), b.ints('zero', [0])], { axis: 0 });
        const target = b.op('Concat', [n, b.ints('six', [6])], { axis: 0 });
        const r = b.op('Reshape', [x, target]);
        b.output(b.op('Add', [b.op('MatMul', [r, floats(b, 'w', [6, 2], 1)]), floats(b, 'bias', [2], 2)]), 'y');
      },
      expected: `
graph g (%x: float32[N,6,1,1]) -> (%y: float32[N,2]) {
  init %w: float32[6,2]
  init %bias: float32[2]
  %reshape_out = Flatten(%x) {axis=1}
  %y = Gemm(%reshape_out, %w, %bias)
}
`,
    });
  });

  it('sets a Flatten whose merged axes are 1 to axis 1, and removes a Reshape of a 2-D input to itself', async () => {
    await checkPass(normalizeGemmInput, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', ['N', 1, 6]);
        const h = b.op('Gemm', [b.op('Flatten', [x], { axis: 2 }), floats(b, 'w', [6, 4], 1)]);
        const r = b.op('Reshape', [h, b.ints('shape', [-1, 4])]);
        b.output(b.op('Gemm', [r, floats(b, 'w2', [4, 2], 2)]), 'y');
      },
      expected: `
graph g (%x: float32[N,1,6]) -> (%y: float32[N,2]) {
  init %w: float32[6,4]
  init %w2: float32[4,2]
  %flatten_out = Flatten(%x) {axis=1}
  %gemm_out = Gemm(%flatten_out, %w)
  %y = Gemm(%gemm_out, %w2)
}
`,
    });
  });

  it('leaves a Reshape that does not keep the batch dim, and one whose size it cannot prove', async () => {
    await checkPass(normalizeGemmInput, {
      opset: 13,
      build(b) {
        const x = b.input('x', 'float32', [2, 2, 2, 2]);
        const r = b.op('Reshape', [x, b.ints('shape', [4, -1])]);
        b.output(b.op('Gemm', [r, floats(b, 'w', [4, 3], 1)]), 'y');
        const x2 = b.input('x2', 'float32', ['N', 4, 'H', 1]);
        const r2 = b.op('Reshape', [x2, b.ints('shape2', [-1, 4])]);
        b.output(b.op('Gemm', [r2, floats(b, 'w2', [4, 3], 2)]), 'z');
      },
      expected: `
graph g (%x: float32[2,2,2,2], %x2: float32[N,4,H,1]) -> (%y: float32[4,3], %z: float32[H*N,3]) {
  init %shape: int64[2]
  init %w: float32[4,3]
  init %shape2: int64[2]
  init %w2: float32[4,3]
  %reshape_out = Reshape(%x, %shape)
  %y = Gemm(%reshape_out, %w)
  %reshape_out_1 = Reshape(%x2, %shape2)
  %z = Gemm(%reshape_out_1, %w2)
}
`,
    });
  });
});
