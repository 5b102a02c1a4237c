/** Golden tests for the core passes: folding, removal of identities and no-ops, CSE, dead code. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Tensor } from '../../src/ir/tensor.js';
import { constantFolding } from '../../src/passes/constant-folding.js';
import { cse } from '../../src/passes/cse.js';
import { deadCode } from '../../src/passes/dead-code.js';
import { runToFixedPoint } from '../../src/passes/driver.js';
import { eliminateIdentity } from '../../src/passes/eliminate-identity.js';
import { eliminateNoop } from '../../src/passes/eliminate-noop.js';
import { squeezeUnsqueeze } from '../../src/passes/squeeze-unsqueeze.js';
import { buildModel, checkPass, graphText } from './helpers.js';

describe('constant-folding', () => {
  it('folds the Shape → Gather → Unsqueeze → Concat → Reshape chain once shapes are static, and Constant nodes', async () => {
    await checkPass(constantFolding, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3, 4, 4]);
        const n = b.op('Gather', [b.op('Shape', [x]), b.ints('zero', [0], [])], { axis: 0 });
        const target = b.op('Concat', [b.op('Unsqueeze', [n, b.ints('axes', [0])]), b.ints('m1', [-1])], { axis: 0 });
        const c = b.op('Constant', [], { value: Tensor.from('float32', [1], [2]) });
        b.output(b.op('Mul', [b.op('Reshape', [x, target]), c]), 'y');
      },
      expected: `
graph g (%x: float32[2,3,4,4]) -> (%y: float32[2,48]) {
  init %concat_out: int64[2]
  init %constant_out: float32[1]
  %reshape_out = Reshape(%x, %concat_out)
  %y = Mul(%reshape_out, %constant_out)
}`,
    });
  });

  it('keeps a symbolic batch symbolic: the chain folds only as far as it is known', async () => {
    await checkPass(constantFolding, {
      build(b) {
        const x = b.input('x', 'float32', ['N', 3, 4]);
        const d = b.op('Gather', [b.op('Shape', [x]), b.ints('one', [1], [])], { axis: 0 });
        const target = b.op('Concat', [b.ints('m1', [-1]), b.op('Unsqueeze', [d, b.ints('axes', [0])])], { axis: 0 });
        b.output(b.op('Reshape', [x, target]), 'y');
      },
      expected: `
graph g (%x: float32[N,3,4]) -> (%y: float32[4*N,3]) {
  init %concat_out: int64[2]
  %y = Reshape(%x, %concat_out)
}`,
    });
  });

  it('does not grow the file: an Expand of a scalar to a large tensor stays', async () => {
    await checkPass(constantFolding, {
      build(b) {
        const x = b.input('x', 'float32', [512, 512]);
        const big = b.op('Expand', [b.floats('one', [], [1]), b.ints('shape', [512, 512])]);
        b.output(b.op('Add', [x, big]), 'y');
      },
      expected: `
graph g (%x: float32[512,512]) -> (%y: float32[512,512]) {
  init %one: float32[]
  init %shape: int64[2]
  %expand_out = Expand(%one, %shape)
  %y = Add(%x, %expand_out)
}`,
    });
  });

  it('never folds DequantizeLinear: quantized weights stay int8', async () => {
    await checkPass(constantFolding, {
      build(b) {
        const x = b.input('x', 'float32', [4]);
        const w = b.op('DequantizeLinear', [b.constant('q', Tensor.from('int8', [4], [1, 2, 3, 4])), b.floats('s', [], [0.5])]);
        b.output(b.op('Mul', [x, w]), 'y');
      },
      expected: `
graph g (%x: float32[4]) -> (%y: float32[4]) {
  init %q: int8[4]
  init %s: float32[]
  %dequantizelinear_out = DequantizeLinear(%q, %s)
  %y = Mul(%x, %dequantizelinear_out)
}`,
    });
  });
});

describe('eliminate-identity', () => {
  it('removes Identity and inference Dropout, keeping output names', async () => {
    await checkPass(eliminateIdentity, {
      build(b) {
        const x = b.input('x', 'float32', [3]);
        const r = b.op('Relu', [b.op('Identity', [x])]);
        const d = b.op('Dropout', [r]);
        b.output(b.op('Identity', [d]), 'y');
      },
      expected: `
graph g (%x: float32[3]) -> (%y: float32[3]) {
  %y = Relu(%x)
}`,
    });
  });

  it('keeps an Identity between a graph input and a graph output', async () => {
    await checkPass(eliminateIdentity, {
      build(b) {
        b.output(b.op('Identity', [b.input('x', 'float32', [3])]), 'y');
      },
      expected: `
graph g (%x: float32[3]) -> (%y: float32[3]) {
  %y = Identity(%x)
}`,
    });
  });
});

describe('eliminate-noop', () => {
  it('removes a same-shape Reshape, an identity Transpose, a same-type Cast, zero Pad, x+0 and x*1', async () => {
    await checkPass(eliminateNoop, {
      build(b) {
        const x = b.input('x', 'float32', [2, 3]);
        let h = b.op('Reshape', [x, b.ints('s', [2, 3])]);
        h = b.op('Transpose', [h], { perm: [0, 1] });
        h = b.op('Cast', [h], { to: 1 });
        h = b.op('Pad', [h, b.ints('pads', [0, 0, 0, 0])]);
        h = b.op('Add', [h, b.floats('zero', [1], [0])]);
        h = b.op('Mul', [b.floats('one', [], [1]), h]);
        b.output(b.op('Relu', [h]), 'y');
      },
      expected: `
graph g (%x: float32[2,3]) -> (%y: float32[2,3]) {
  %y = Relu(%x)
}`,
    });
  });

  it('keeps x+0 when the zero broadcasts x to a larger shape', async () => {
    await checkPass(eliminateNoop, {
      build(b) {
        const x = b.input('x', 'float32', [3]);
        b.output(b.op('Add', [x, b.floats('zero', [2, 3], [0, 0, 0, 0, 0, 0])]), 'y');
      },
      expected: `
graph g (%x: float32[3]) -> (%y: float32[2,3]) {
  init %zero: float32[2,3]
  %y = Add(%x, %zero)
}`,
    });
  });
});

describe('squeeze-unsqueeze', () => {
  it('cancels an Unsqueeze of what a Squeeze removed', async () => {
    await checkPass(squeezeUnsqueeze, {
      build(b) {
        const x = b.input('x', 'float32', [1, 3, 1]);
        const s = b.op('Squeeze', [x, b.ints('a', [0, 2])]);
        b.output(b.op('Relu', [b.op('Unsqueeze', [s, b.ints('b', [2, 0])])]), 'y');
      },
      expected: `
graph g (%x: float32[1,3,1]) -> (%y: float32[1,3,1]) {
  %y = Relu(%x)
}`,
    });
  });
});

describe('cse', () => {
  it('merges equal constants and equal nodes', async () => {
    await checkPass(cse, {
      build(b) {
        const x = b.input('x', 'float32', [3]);
        const a = b.op('Mul', [b.op('Relu', [x]), b.floats('two_a', [], [2])]);
        const c = b.op('Mul', [b.op('Relu', [x]), b.floats('two_b', [], [2])]);
        b.output(b.op('Add', [a, c]), 'y');
      },
      expected: `
graph g (%x: float32[3]) -> (%y: float32[3]) {
  init %two_a: float32[]
  %relu_out = Relu(%x)
  %mul_out = Mul(%relu_out, %two_a)
  %y = Add(%mul_out, %mul_out)
}`,
    });
  });
});

describe('dead-code', () => {
  it('removes unread nodes and initializers, but never an op it does not know', () => {
    const m = buildModel((b) => {
      const x = b.input('x', 'float32', [3]);
      b.op('Neg', [b.op('Exp', [x])]);
      b.op('Mystery', [x], {}, { domain: 'com.example' });
      b.floats('unused', [1], [0]);
      b.output(b.op('Relu', [x]), 'y', { kind: 'tensor', dtype: 'float32', shape: [3] });
    });
    const { stats } = runToFixedPoint(m, [deadCode], { verifyEachPass: true });
    assert.equal(stats[0].rewrites, 3);
    assert.match(graphText(m), /com\.example\.Mystery/);
    assert.doesNotMatch(graphText(m), /Exp|Neg|unused/);
  });
});
