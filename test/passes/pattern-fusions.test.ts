/**
 * Golden tests for the pattern fusions: HardSwish, LayerNormalization, Gelu, Relu/Clip, and
 * Conv/Gemm + activation (the exporters' `fusableActivation` and the onnxruntime lowering).
 * Random feeds are in [0, 1), so most graphs first stretch x to [-4, 4) with `spread`, to
 * exercise both sides of every kink.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ModelBuilder } from '../../src/ir/builder.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { fusableActivation, lowerFusedActivation } from '../../src/passes/fuse-activation.js';
import { fuseGelu } from '../../src/passes/fuse-gelu.js';
import { fuseHardswish } from '../../src/passes/fuse-hardswish.js';
import { fuseLayernorm } from '../../src/passes/fuse-layernorm.js';
import { fuseReluClip } from '../../src/passes/fuse-relu-clip.js';
import { buildModel, checkPass } from './helpers.js';

/** (x − ½)·8: random [0, 1) feeds become [-4, 4). */
function spread(b: ModelBuilder, x: Value): Value {
  return b.op('Mul', [b.op('Sub', [x, b.floats('half', [], [0.5])]), b.floats('eight', [], [8])]);
}

/** The initializers `spread` adds, then its nodes (print order puts all initializers first). */
const SPREAD_INIT = `  init %half: float32[]
  init %eight: float32[]`;
const SPREAD_NODES = `  %sub_out = Sub(%x, %half)
  %mul_out = Mul(%sub_out, %eight)`;
const SPREAD = `${SPREAD_INIT}\n${SPREAD_NODES}`;

const weights = (n: number, f: (i: number) => number = Math.sin): number[] => Array.from({ length: n }, (_, i) => f(i));

describe('fuse-hardswish', () => {
  it('folds x·HardSigmoid(x) with alpha 1/6 as a float32 rounds it', async () => {
    await checkPass(fuseHardswish, {
      opset: 14,
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 8]));
        b.output(b.op('Mul', [b.op('HardSigmoid', [x], { alpha: Math.fround(1 / 6), beta: 0.5 }), x]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
${SPREAD}
  %y = HardSwish(%mul_out)
}`,
    });
  });

  it('folds (x·Clip(x+3, 0, 6))/6 and x·(Clip(3+x, 0, 6)·(1/6))', async () => {
    await checkPass(fuseHardswish, {
      opset: 14,
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 8]));
        const zero = b.floats('zero', [], [0]);
        const six = b.floats('six', [], [6]);
        const c1 = b.op('Clip', [b.op('Add', [x, b.floats('three', [], [3])]), zero, six]);
        const h1 = b.op('Div', [b.op('Mul', [x, c1]), six]);
        const c2 = b.op('Clip', [b.op('Add', [b.floats('three_b', [1], [3]), h1]), zero, six]);
        b.output(b.op('Mul', [h1, b.op('Mul', [c2, b.floats('sixth', [], [1 / 6])])]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
${SPREAD}
  %div_out = HardSwish(%mul_out)
  %y = HardSwish(%div_out)
}`,
    });
  });

  it('folds (x·Relu6(x+3))·(1/6), Relu6 spelled Relu then Clip, once fuse-relu-clip merged them', async () => {
    await checkPass([fuseReluClip, fuseHardswish], {
      opset: 14,
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 8]));
        const r = b.op('Relu', [b.op('Add', [x, b.floats('three', [], [3])])]);
        const c = b.op('Clip', [r, b.floats('zero', [], [0]), b.floats('six', [], [6])]);
        b.output(b.op('Mul', [b.floats('sixth', [], [0.16666667]), b.op('Mul', [c, x])]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
${SPREAD}
  %y = HardSwish(%mul_out)
}`,
    });
  });

  it('keeps HardSigmoid with another alpha, a gate of another x, a shared intermediate, and opset 13', async () => {
    const build = (b: ModelBuilder): void => {
      const x = spread(b, b.input('x', 'float32', [2, 8]));
      const z = b.input('z', 'float32', [2, 8]);
      const paddle = b.op('Mul', [x, b.op('HardSigmoid', [x], { alpha: 0.2, beta: 0.5 })]);
      const other = b.op('Mul', [z, b.op('HardSigmoid', [x], { alpha: 1 / 6, beta: 0.5 })]);
      const clip = b.op('Clip', [b.op('Add', [x, b.floats('three', [], [3])]), b.floats('zero', [], [0]), b.floats('six', [], [6])]);
      const shared = b.op('Div', [b.op('Mul', [x, clip]), b.floats('six_b', [], [6])]);
      b.output(paddle, 'y1');
      b.output(other, 'y2');
      b.output(shared, 'y3');
      b.output(clip, 'y4');
    };
    const expected = `
graph g (%x: float32[2,8], %z: float32[2,8]) -> (%y1: float32[2,8], %y2: float32[2,8], %y3: float32[2,8], %y4: float32[2,8]) {
${SPREAD_INIT}
  init %three: float32[]
  init %zero: float32[]
  init %six: float32[]
  init %six_b: float32[]
${SPREAD_NODES}
  %hardsigmoid_out = HardSigmoid(%mul_out) {alpha=0.20000000298023224, beta=0.5}
  %y1 = Mul(%mul_out, %hardsigmoid_out)
  %hardsigmoid_out_2 = HardSigmoid(%mul_out) {alpha=0.1666666716337204, beta=0.5}
  %y2 = Mul(%z, %hardsigmoid_out_2)
  %add_out = Add(%mul_out, %three)
  %y4 = Clip(%add_out, %zero, %six)
  %mul_out_4 = Mul(%mul_out, %y4)
  %y3 = Div(%mul_out_4, %six_b)
}`;
    const { rewrites } = await checkPass(fuseHardswish, { opset: 14, build, expected });
    assert.equal(rewrites, 0);
    const old = await checkPass(fuseHardswish, {
      opset: 13,
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 8]));
        b.output(b.op('Mul', [x, b.op('HardSigmoid', [x], { alpha: 1 / 6, beta: 0.5 })]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
${SPREAD}
  %hardsigmoid_out = HardSigmoid(%mul_out) {alpha=0.1666666716337204, beta=0.5}
  %y = Mul(%mul_out, %hardsigmoid_out)
}`,
    });
    assert.equal(old.rewrites, 0);
  });
});

/** ReduceMean over `axes` as the opset spells it: attribute before 18, input from 18. */
function reduceMean(b: ModelBuilder, x: Value, axes: number[], name: string): Value {
  return b.opset < 18 ? b.op('ReduceMean', [x], { axes }) : b.op('ReduceMean', [x, b.ints(name, axes)]);
}

describe('fuse-layernorm', () => {
  it('folds the Pow/Div form with γ and β (opset 17, axes attribute)', async () => {
    await checkPass(fuseLayernorm, {
      opset: 17,
      build(b) {
        const x = b.input('x', 'float32', ['N', 3, 4]);
        const d = b.op('Sub', [x, reduceMean(b, x, [-1], 'a1')]);
        const v = reduceMean(b, b.op('Pow', [d, b.floats('two', [], [2])]), [2], 'a2');
        const n = b.op('Div', [d, b.op('Sqrt', [b.op('Add', [v, b.floats('eps', [], [1e-5])])])]);
        const s = b.op('Mul', [b.floats('gamma', [4], [1, 2, 3, 4]), n]);
        b.output(b.op('Add', [s, b.floats('beta', [4], [0.1, 0.2, 0.3, 0.4])]), 'y');
      },
      expected: `
graph g (%x: float32[N,3,4]) -> (%y: float32[N,3,4]) {
  init %gamma: float32[4]
  init %beta: float32[4]
  %y = LayerNormalization(%x, %gamma, %beta) {axis=-1, epsilon=0.000009999999747378752}
}`,
    });
  });

  it('folds the Mul(d,d)/Reciprocal form over two axes without γ or β (opset 18, axes input)', async () => {
    await checkPass(fuseLayernorm, {
      opset: 18,
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 3, 4, 5]));
        const d = b.op('Sub', [x, reduceMean(b, x, [2, 3], 'a1')]);
        const v = reduceMean(b, b.op('Mul', [d, d]), [-1, -2], 'a2');
        const r = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [b.floats('eps', [], [1e-6]), v])])]);
        b.output(b.op('Relu', [b.op('Mul', [r, d])]), 'y');
      },
      expected: `
graph g (%x: float32[2,3,4,5]) -> (%y: float32[2,3,4,5]) {
${SPREAD_INIT}
  init %mul_out_4_scale: float32[4,5]
${SPREAD_NODES}
  %mul_out_4 = LayerNormalization(%mul_out, %mul_out_4_scale) {axis=-2, epsilon=9.999999974752427e-7}
  %y = Relu(%mul_out_4)
}`,
    });
  });

  it('expands a broadcast γ to the normalized shape, and leaves a β that broadcasts along the batch axis', async () => {
    await checkPass(fuseLayernorm, {
      opset: 17,
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4]);
        const d = b.op('Sub', [x, reduceMean(b, x, [1, 2], 'a1')]);
        const v = reduceMean(b, b.op('Pow', [d, b.floats('two', [], [2])]), [1, 2], 'a2');
        const n = b.op('Div', [d, b.op('Sqrt', [b.op('Add', [v, b.floats('eps', [], [1e-5])])])]);
        const s = b.op('Mul', [n, b.floats('gamma', [1, 3, 1], [0.5, 1, 2])]);
        b.output(b.op('Add', [s, b.floats('beta', [2, 1, 1], [1, -1])]), 'y');
      },
      expected: `
graph g (%x: float32[2,3,4]) -> (%y: float32[2,3,4]) {
  init %beta: float32[2,1,1]
  init %mul_out_scale: float32[3,4]
  %mul_out = LayerNormalization(%x, %mul_out_scale) {axis=-2, epsilon=0.000009999999747378752}
  %y = Add(%mul_out, %beta)
}`,
    });
  });

  it('keeps non-trailing axes, a d read elsewhere, and opset 16', async () => {
    const build = (b: ModelBuilder): void => {
      const x = b.input('x', 'float32', [2, 3, 4]);
      // Over axis 1 of 3: not a layer norm.
      const d = b.op('Sub', [x, reduceMean(b, x, [1], 'a1')]);
      const v = reduceMean(b, b.op('Pow', [d, b.floats('two', [], [2])]), [1], 'a2');
      b.output(b.op('Div', [d, b.op('Sqrt', [b.op('Add', [v, b.floats('eps', [], [1e-5])])])]), 'y1');
      // The centred value is also an output.
      const d2 = b.op('Sub', [x, reduceMean(b, x, [-1], 'a3')]);
      const v2 = reduceMean(b, b.op('Pow', [d2, b.floats('two_b', [], [2])]), [-1], 'a4');
      b.output(b.op('Div', [d2, b.op('Sqrt', [b.op('Add', [v2, b.floats('eps_b', [], [1e-5])])])]), 'y2');
      b.output(d2, 'd');
    };
    const kept = await checkPass(fuseLayernorm, {
      opset: 17,
      build,
      expected: `
graph g (%x: float32[2,3,4]) -> (%y1: float32[2,3,4], %y2: float32[2,3,4], %d: float32[2,3,4]) {
  init %two: float32[]
  init %eps: float32[]
  init %two_b: float32[]
  init %eps_b: float32[]
  %reducemean_out = ReduceMean(%x) {axes=[1]}
  %sub_out = Sub(%x, %reducemean_out)
  %pow_out = Pow(%sub_out, %two)
  %reducemean_out_1 = ReduceMean(%pow_out) {axes=[1]}
  %add_out = Add(%reducemean_out_1, %eps)
  %sqrt_out = Sqrt(%add_out)
  %y1 = Div(%sub_out, %sqrt_out)
  %reducemean_out_2 = ReduceMean(%x) {axes=[-1]}
  %d = Sub(%x, %reducemean_out_2)
  %pow_out_4 = Pow(%d, %two_b)
  %reducemean_out_5 = ReduceMean(%pow_out_4) {axes=[-1]}
  %add_out_6 = Add(%reducemean_out_5, %eps_b)
  %sqrt_out_7 = Sqrt(%add_out_6)
  %y2 = Div(%d, %sqrt_out_7)
}`,
    });
    assert.equal(kept.rewrites, 0);
    const old = await checkPass(fuseLayernorm, {
      opset: 16,
      build(b) {
        const x = b.input('x', 'float32', [2, 4]);
        const d = b.op('Sub', [x, reduceMean(b, x, [-1], 'a1')]);
        const v = reduceMean(b, b.op('Pow', [d, b.floats('two', [], [2])]), [-1], 'a2');
        b.output(b.op('Div', [d, b.op('Sqrt', [b.op('Add', [v, b.floats('eps', [], [1e-5])])])]), 'y');
      },
      expected: `
graph g (%x: float32[2,4]) -> (%y: float32[2,4]) {
  init %two: float32[]
  init %eps: float32[]
  %reducemean_out = ReduceMean(%x) {axes=[-1]}
  %sub_out = Sub(%x, %reducemean_out)
  %pow_out = Pow(%sub_out, %two)
  %reducemean_out_1 = ReduceMean(%pow_out) {axes=[-1]}
  %add_out = Add(%reducemean_out_1, %eps)
  %sqrt_out = Sqrt(%add_out)
  %y = Div(%sub_out, %sqrt_out)
}`,
    });
    assert.equal(old.rewrites, 0);
  });
});

/** 1 + Erf(x/√2), as PyTorch exports it. */
function erfPart(b: ModelBuilder, x: Value, divide = true): Value {
  const u = divide
    ? b.op('Div', [x, b.floats('sqrt2', [], [Math.fround(Math.SQRT2)])])
    : b.op('Mul', [b.floats('rsqrt2', [], [0.70710677]), x]);
  return b.op('Add', [b.op('Erf', [u]), b.floats('one', [], [1])]);
}

describe('fuse-gelu', () => {
  it('folds (x·(1+Erf(x/√2)))·½, the PyTorch form', async () => {
    await checkPass(fuseGelu, {
      opset: 20,
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 8]));
        b.output(b.op('Mul', [b.op('Mul', [x, erfPart(b, x)]), b.floats('h', [], [0.5])]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
${SPREAD}
  %y = Gelu(%mul_out)
}`,
    });
  });

  it('folds (x·½)·(1+Erf(x·(1/√2))) and x·(½·(1+Erf(x/√2)))', async () => {
    await checkPass(fuseGelu, {
      opset: 20,
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 8]));
        const g1 = b.op('Mul', [b.op('Mul', [x, b.floats('h', [], [0.5])]), erfPart(b, x, false)]);
        b.output(b.op('Mul', [g1, b.op('Mul', [b.floats('h2', [1, 1], [0.5]), erfPart(b, g1)])]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
${SPREAD}
  %mul_out_3 = Gelu(%mul_out)
  %y = Gelu(%mul_out_3)
}`,
    });
  });

  it('folds the tanh approximation with x³ as Pow and as x·(x·x)', async () => {
    await checkPass(fuseGelu, {
      opset: 20,
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 8]));
        const tanhPart = (v: Value, cube: Value): Value => {
          const inner = b.op('Add', [v, b.op('Mul', [cube, b.floats('c', [], [0.044715])])]);
          return b.op('Add', [b.floats('one', [], [1]), b.op('Tanh', [b.op('Mul', [b.floats('k', [], [0.7978846]), inner])])]);
        };
        const g1 = b.op('Mul', [b.op('Mul', [b.floats('h', [], [0.5]), x]), tanhPart(x, b.op('Pow', [x, b.floats('three', [], [3])]))]);
        const cube = b.op('Mul', [g1, b.op('Mul', [g1, g1])]);
        b.output(b.op('Mul', [b.op('Mul', [g1, tanhPart(g1, cube)]), b.floats('h2', [], [0.5])]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
${SPREAD}
  %mul_out_5 = Gelu(%mul_out) {approximate="tanh"}
  %y = Gelu(%mul_out_5) {approximate="tanh"}
}`,
    });
  });

  it('keeps a factor other than ½, a tanh with another coefficient, and opset 19', async () => {
    const build = (b: ModelBuilder): void => {
      const x = spread(b, b.input('x', 'float32', [2, 8]));
      b.output(b.op('Mul', [b.op('Mul', [x, erfPart(b, x)]), b.floats('h', [], [0.6])]), 'y1');
      const inner = b.op('Add', [x, b.op('Mul', [b.op('Pow', [x, b.floats('three', [], [3])]), b.floats('c', [], [0.05])])]);
      const t = b.op('Add', [b.op('Tanh', [b.op('Mul', [inner, b.floats('k', [], [0.7978846])])]), b.floats('one_b', [], [1])]);
      b.output(b.op('Mul', [b.op('Mul', [x, b.floats('h_b', [], [0.5])]), t]), 'y2');
    };
    const { rewrites } = await checkPass(fuseGelu, {
      opset: 20,
      build,
      expected: `
graph g (%x: float32[2,8]) -> (%y1: float32[2,8], %y2: float32[2,8]) {
${SPREAD_INIT}
  init %sqrt2: float32[]
  init %one: float32[]
  init %h: float32[]
  init %three: float32[]
  init %c: float32[]
  init %k: float32[]
  init %one_b: float32[]
  init %h_b: float32[]
${SPREAD_NODES}
  %div_out = Div(%mul_out, %sqrt2)
  %erf_out = Erf(%div_out)
  %add_out = Add(%erf_out, %one)
  %mul_out_1 = Mul(%mul_out, %add_out)
  %y1 = Mul(%mul_out_1, %h)
  %pow_out = Pow(%mul_out, %three)
  %mul_out_3 = Mul(%pow_out, %c)
  %add_out_4 = Add(%mul_out, %mul_out_3)
  %mul_out_5 = Mul(%add_out_4, %k)
  %tanh_out = Tanh(%mul_out_5)
  %add_out_6 = Add(%tanh_out, %one_b)
  %mul_out_7 = Mul(%mul_out, %h_b)
  %y2 = Mul(%mul_out_7, %add_out_6)
}`,
    });
    assert.equal(rewrites, 0);
    const old = await checkPass(fuseGelu, {
      opset: 19,
      build(b) {
        const x = b.input('x', 'float32', [2, 8]);
        b.output(b.op('Mul', [b.op('Mul', [x, erfPart(b, x)]), b.floats('h', [], [0.5])]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
  init %sqrt2: float32[]
  init %one: float32[]
  init %h: float32[]
  %div_out = Div(%x, %sqrt2)
  %erf_out = Erf(%div_out)
  %add_out = Add(%erf_out, %one)
  %mul_out = Mul(%x, %add_out)
  %y = Mul(%mul_out, %h)
}`,
    });
    assert.equal(old.rewrites, 0);
  });
});

describe('fuse-relu-clip', () => {
  it('drops a Relu before a Clip whose min is ≥ 0', async () => {
    await checkPass(fuseReluClip, {
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 8]));
        b.output(b.op('Clip', [b.op('Relu', [x]), b.floats('lo', [], [0]), b.floats('hi', [], [6])]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
${SPREAD_INIT}
  init %lo: float32[]
  init %hi: float32[]
${SPREAD_NODES}
  %y = Clip(%mul_out, %lo, %hi)
}`,
    });
  });

  it('merges a Relu after a Clip: min becomes max(min, 0), or the Relu just goes', async () => {
    await checkPass(fuseReluClip, {
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 8]));
        const a = b.op('Relu', [b.op('Clip', [x, b.floats('lo', [], [-1]), b.floats('hi', [], [3])])]);
        const c = b.op('Relu', [b.op('Clip', [x, b.floats('lo_b', [], [1])])]);
        const d = b.op('Relu', [b.op('Clip', [x, null, b.floats('hi_b', [], [2])])]);
        b.output(b.op('Sum', [a, c, d]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
${SPREAD_INIT}
  init %hi: float32[]
  init %lo_b: float32[]
  init %hi_b: float32[]
  init %clip_out_min: float32[]
  init %clip_out_3_min: float32[]
${SPREAD_NODES}
  %clip_out = Clip(%mul_out, %clip_out_min, %hi)
  %clip_out_1 = Clip(%mul_out, %lo_b)
  %clip_out_3 = Clip(%mul_out, %clip_out_3_min, %hi_b)
  %y = Sum(%clip_out, %clip_out_1, %clip_out_3)
}`,
    });
  });

  it('sets the min attribute of a Clip before opset 11', async () => {
    await checkPass(fuseReluClip, {
      opset: 9,
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 8]));
        b.output(b.op('Relu', [b.op('Clip', [x], { min: -1, max: 6 })]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
${SPREAD}
  %y = Clip(%mul_out) {max=6, min=0}
}`,
    });
  });

  it('keeps Relu before a Clip with a negative min, Relu after a Clip below 0, and a Relu read twice', async () => {
    const { rewrites } = await checkPass(fuseReluClip, {
      build(b) {
        const x = spread(b, b.input('x', 'float32', [2, 8]));
        const a = b.op('Clip', [b.op('Relu', [x]), b.floats('lo', [], [-1]), b.floats('hi', [], [6])]);
        const c = b.op('Relu', [b.op('Clip', [x, b.floats('lo_b', [], [-5]), b.floats('hi_b', [], [-1])])]);
        const r = b.op('Relu', [x]);
        const d = b.op('Clip', [r, b.floats('lo_c', [], [0]), b.floats('hi_c', [], [6])]);
        b.output(b.op('Sum', [a, c, d, r]), 'y');
      },
      expected: `
graph g (%x: float32[2,8]) -> (%y: float32[2,8]) {
${SPREAD_INIT}
  init %lo: float32[]
  init %hi: float32[]
  init %lo_b: float32[]
  init %hi_b: float32[]
  init %lo_c: float32[]
  init %hi_c: float32[]
${SPREAD_NODES}
  %relu_out = Relu(%mul_out)
  %clip_out = Clip(%relu_out, %lo, %hi)
  %clip_out_1 = Clip(%mul_out, %lo_b, %hi_b)
  %relu_out_2 = Relu(%clip_out_1)
  %relu_out_3 = Relu(%mul_out)
  %clip_out_4 = Clip(%relu_out_3, %lo_c, %hi_c)
  %y = Sum(%clip_out, %relu_out_2, %clip_out_4, %relu_out_3)
}`,
    });
    assert.equal(rewrites, 0);
  });
});

describe('fusableActivation', () => {
  /** The node of the model producing output `name`'s input chain root: the first node of `op`. */
  function first(build: (b: ModelBuilder) => void, op: string, opset = 17): Node {
    const m = buildModel(build, opset);
    const n = m.graph.nodes.find((x) => x.opType === op);
    assert.ok(n, `no ${op} node`);
    return n;
  }
  const conv = (b: ModelBuilder): Value =>
    b.op('Conv', [b.input('x', 'float32', [1, 2, 4, 4]), b.floats('w', [3, 2, 1, 1], weights(6))], { kernel_shape: [1, 1] });

  it('reports Relu, Relu6 (Clip to [0, 6]), Clip with open bounds, and the opset-6 attribute Clip', () => {
    const relu = fusableActivation(first((b) => b.output(b.op('Relu', [conv(b)]), 'y'), 'Conv'));
    assert.equal(relu?.op, 'Relu');
    assert.deepEqual(relu?.params, []);
    assert.equal(relu?.node.opType, 'Relu');
    const six = fusableActivation(
      first((b) => b.output(b.op('Clip', [conv(b), b.floats('lo', [], [0]), b.floats('hi', [], [6])]), 'y'), 'Conv'),
    );
    assert.deepEqual([six?.op, six?.params], ['Relu6', [0, 6]]);
    const open = fusableActivation(first((b) => b.output(b.op('Clip', [conv(b), b.floats('lo', [], [-1])]), 'y'), 'Conv'));
    assert.deepEqual([open?.op, open?.params], ['Clip', [-1, Number.POSITIVE_INFINITY]]);
    const old = fusableActivation(first((b) => b.output(b.op('Clip', [conv(b)], { min: 0, max: 6 }), 'y'), 'Conv', 9));
    assert.deepEqual([old?.op, old?.params], ['Relu6', [0, 6]]);
  });

  it('reports parameters of LeakyRelu and HardSigmoid, and HardSwish/Sigmoid/Tanh after MatMul, Gemm, Add, ConvTranspose', () => {
    const mm = (b: ModelBuilder): Value => b.op('MatMul', [b.input('x', 'float32', [2, 3]), b.floats('w', [3, 4], weights(12))]);
    const leaky = fusableActivation(first((b) => b.output(b.op('LeakyRelu', [mm(b)], { alpha: 0.25 }), 'y'), 'MatMul'));
    assert.deepEqual([leaky?.op, leaky?.params], ['LeakyRelu', [0.25]]);
    const hs = fusableActivation(first((b) => b.output(b.op('HardSigmoid', [mm(b)]), 'y'), 'MatMul'));
    assert.deepEqual([hs?.op, hs?.params.map(Math.fround)], ['HardSigmoid', [Math.fround(0.2), 0.5]]);
    const add = fusableActivation(
      first(
        (b) => b.output(b.op('HardSwish', [b.op('Add', [b.input('x', 'float32', [3]), b.floats('c', [3], [1, 2, 3])])]), 'y'),
        'Add',
        14,
      ),
    );
    assert.equal(add?.op, 'HardSwish');
    const gemm = fusableActivation(
      first(
        (b) => b.output(b.op('Sigmoid', [b.op('Gemm', [b.input('x', 'float32', [2, 3]), b.floats('w', [3, 4], weights(12))])]), 'y'),
        'Gemm',
      ),
    );
    assert.equal(gemm?.op, 'Sigmoid');
    const ct = fusableActivation(
      first(
        (b) =>
          b.output(
            b.op('Tanh', [b.op('ConvTranspose', [b.input('x', 'float32', [1, 2, 3, 3]), b.floats('w', [2, 1, 2, 2], weights(8))])]),
            'y',
          ),
        'ConvTranspose',
      ),
    );
    assert.equal(ct?.op, 'Tanh');
  });

  it('reports nothing for an output read twice, a Clip with a computed bound, another producer, or a non-activation', () => {
    const twice = first((b) => {
      const c = conv(b);
      b.output(b.op('Relu', [c]), 'y');
      b.output(c, 'c');
    }, 'Conv');
    assert.equal(fusableActivation(twice), undefined);
    const computed = first((b) => {
      const lo = b.op('Neg', [b.input('m', 'float32', [])]);
      b.output(b.op('Clip', [conv(b), lo]), 'y');
    }, 'Conv');
    assert.equal(fusableActivation(computed), undefined);
    const pool = first(
      (b) => b.output(b.op('Relu', [b.op('MaxPool', [b.input('x', 'float32', [1, 1, 4, 4])], { kernel_shape: [2, 2] })]), 'y'),
      'MaxPool',
    );
    assert.equal(fusableActivation(pool), undefined);
    const exp = first((b) => b.output(b.op('Exp', [conv(b)]), 'y'), 'Conv');
    assert.equal(fusableActivation(exp), undefined);
  });
});

describe('lower-fused-activation', () => {
  it("lowers Conv and Gemm + activation to FusedConv/FusedGemm that onnxruntime runs with equal outputs (level 'all')", async () => {
    const { after } = await checkPass(lowerFusedActivation, {
      level: 'all',
      build(b) {
        const x = spread(b, b.input('x', 'float32', [1, 2, 5, 5]));
        const conv = (v: Value, name: string): Value =>
          b.op(
            'Conv',
            [
              v,
              b.floats(
                `${name}_w`,
                [2, 2, 3, 3],
                weights(36, (i) => Math.sin(i + name.length)),
              ),
              b.floats(`${name}_b`, [2], [0.1, -0.2]),
            ],
            {
              pads: [1, 1, 1, 1],
            },
          );
        let h = b.op('Clip', [conv(x, 'c1'), b.floats('zero', [], [0]), b.floats('six', [], [6])]);
        h = b.op('Relu', [conv(h, 'c2')]);
        h = b.op('LeakyRelu', [conv(h, 'c3')], { alpha: 0.1 });
        h = b.op('HardSigmoid', [conv(h, 'c4')], { alpha: 0.3, beta: 0.4 });
        h = b.op('Tanh', [conv(h, 'c5')]);
        h = b.op('Sigmoid', [conv(h, 'c6')]);
        const f = b.op('Flatten', [h]);
        const gemm = (v: Value, name: string, k: number): Value =>
          b.op('Gemm', [
            v,
            b.floats(`${name}_w`, [k, 6], weights(k * 6, Math.cos)),
            b.floats(`${name}_b`, [6], [0, 0.1, 0.2, -0.1, -0.2, 0.3]),
          ]);
        let g = b.op('Relu', [gemm(f, 'g1', 50)]);
        g = b.op('LeakyRelu', [gemm(g, 'g2', 6)], { alpha: 0.2 });
        g = b.op('HardSigmoid', [gemm(g, 'g3', 6)]);
        b.output(b.op('Tanh', [gemm(g, 'g4', 6)]), 'y');
      },
      expected: `
graph g (%x: float32[1,2,5,5]) -> (%y: float32[1,6]) {
${SPREAD_INIT}
  init %c1_w: float32[2,2,3,3]
  init %c1_b: float32[2]
  init %c2_w: float32[2,2,3,3]
  init %c2_b: float32[2]
  init %c3_w: float32[2,2,3,3]
  init %c3_b: float32[2]
  init %c4_w: float32[2,2,3,3]
  init %c4_b: float32[2]
  init %c5_w: float32[2,2,3,3]
  init %c5_b: float32[2]
  init %c6_w: float32[2,2,3,3]
  init %c6_b: float32[2]
  init %g1_w: float32[50,6]
  init %g1_b: float32[6]
  init %g2_w: float32[6,6]
  init %g2_b: float32[6]
  init %g3_w: float32[6,6]
  init %g3_b: float32[6]
  init %g4_w: float32[6,6]
  init %g4_b: float32[6]
${SPREAD_NODES}
  %clip_out = com.microsoft.FusedConv(%mul_out, %c1_w, %c1_b) {activation="Clip", activation_params=[0,6], pads=[1,1,1,1]}
  %relu_out = com.microsoft.FusedConv(%clip_out, %c2_w, %c2_b) {activation="Relu", pads=[1,1,1,1]}
  %leakyrelu_out = com.microsoft.FusedConv(%relu_out, %c3_w, %c3_b) {activation="LeakyRelu", activation_params=[0.10000000149011612], pads=[1,1,1,1]}
  %hardsigmoid_out = com.microsoft.FusedConv(%leakyrelu_out, %c4_w, %c4_b) {activation="HardSigmoid", activation_params=[0.30000001192092896,0.4000000059604645], pads=[1,1,1,1]}
  %tanh_out = com.microsoft.FusedConv(%hardsigmoid_out, %c5_w, %c5_b) {activation="Tanh", pads=[1,1,1,1]}
  %sigmoid_out = com.microsoft.FusedConv(%tanh_out, %c6_w, %c6_b) {activation="Sigmoid", pads=[1,1,1,1]}
  %flatten_out = Flatten(%sigmoid_out)
  %relu_out_6 = com.microsoft.FusedGemm(%flatten_out, %g1_w, %g1_b) {activation="Relu"}
  %leakyrelu_out_8 = com.microsoft.FusedGemm(%relu_out_6, %g2_w, %g2_b) {activation="LeakyRelu", activation_alpha=0.20000000298023224}
  %hardsigmoid_out_10 = com.microsoft.FusedGemm(%leakyrelu_out_8, %g3_w, %g3_b) {activation="HardSigmoid", activation_alpha=0.2, activation_beta=0.5}
  %y = com.microsoft.FusedGemm(%hardsigmoid_out_10, %g4_w, %g4_b) {activation="Tanh"}
}`,
    });
    assert.equal(after.opset('com.microsoft'), 1);
  });

  it('keeps a Conv read twice, Gemm + Clip, Conv + HardSwish, a Gemm without C, and everything at level basic', async () => {
    const build = (b: ModelBuilder): void => {
      const x = spread(b, b.input('x', 'float32', [1, 2, 3, 3]));
      const w = b.floats('w', [2, 2, 1, 1], [1, -1, 0.5, 2]);
      const c = b.op('Conv', [x, w], { kernel_shape: [1, 1] });
      b.output(b.op('Relu', [c]), 'y1');
      b.output(b.op('HardSwish', [b.op('Conv', [c, w], { kernel_shape: [1, 1] })]), 'y2');
      const f = b.op('Flatten', [c]);
      const gw = b.floats('gw', [18, 4], weights(72));
      b.output(
        b.op('Clip', [b.op('Gemm', [f, gw, b.floats('gb', [4], [0, 1, 2, 3])]), b.floats('lo', [], [0]), b.floats('hi', [], [6])]),
        'y3',
      );
      b.output(b.op('Relu', [b.op('Gemm', [f, gw])]), 'y4');
    };
    const expected = `
graph g (%x: float32[1,2,3,3]) -> (%y1: float32[1,2,3,3], %y2: float32[1,2,3,3], %y3: float32[1,4], %y4: float32[1,4]) {
${SPREAD_INIT}
  init %w: float32[2,2,1,1]
  init %gw: float32[18,4]
  init %gb: float32[4]
  init %lo: float32[]
  init %hi: float32[]
${SPREAD_NODES}
  %conv_out = Conv(%mul_out, %w) {kernel_shape=[1,1]}
  %y1 = Relu(%conv_out)
  %conv_out_1 = Conv(%conv_out, %w) {kernel_shape=[1,1]}
  %y2 = HardSwish(%conv_out_1)
  %flatten_out = Flatten(%conv_out)
  %gemm_out = Gemm(%flatten_out, %gw, %gb)
  %y3 = Clip(%gemm_out, %lo, %hi)
  %gemm_out_2 = Gemm(%flatten_out, %gw)
  %y4 = Relu(%gemm_out_2)
}`;
    const all = await checkPass(lowerFusedActivation, { level: 'all', build, expected });
    assert.equal(all.rewrites, 0);
    const basic = await checkPass(lowerFusedActivation, { level: 'basic', build, expected });
    assert.equal(basic.rewrites, 0);
  });

  it('lowers at level basic nothing, even where it would at all', async () => {
    const build = (b: ModelBuilder): void => {
      const x = b.input('x', 'float32', [1, 2, 3, 3]);
      b.output(b.op('Relu', [b.op('Conv', [x, b.floats('w', [2, 2, 1, 1], [1, -1, 0.5, 2])], { kernel_shape: [1, 1] })]), 'y');
    };
    const { rewrites, after } = await checkPass(lowerFusedActivation, {
      level: 'basic',
      build,
      expected: `
graph g (%x: float32[1,2,3,3]) -> (%y: float32[1,2,3,3]) {
  init %w: float32[2,2,1,1]
  %conv_out = Conv(%x, %w) {kernel_shape=[1,1]}
  %y = Relu(%conv_out)
}`,
    });
    assert.equal(rewrites, 0);
    assert.equal(after.opset('com.microsoft'), undefined);
  });
});
