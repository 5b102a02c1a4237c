import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelBuilder } from '../../src/ir/builder.js';
import { printModel } from '../../src/ir/print.js';
import { Tensor } from '../../src/ir/tensor.js';
import { referenceBackend } from '../../src/runtime/reference.js';

describe('ModelBuilder', () => {
  it('types attributes from the op schema (alpha: 1 is a float on LeakyRelu)', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [3]);
    b.output(b.op('LeakyRelu', [x], { alpha: 1 }), 'y');
    const m = b.build();
    assert.deepEqual(m.graph.nodes[0].attr('alpha'), { type: 'float', value: 1 });
    assert.match(printModel(m), /LeakyRelu\(%x\) \{alpha=1\}/);
  });

  it('builds a model that the reference interpreter runs', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 2]);
    const y = b.op('Add', [x, b.floats('one', [1], [1])]);
    b.output(b.op('Mul', [y, y]), 'y');
    const s = await referenceBackend().createSession(b.build());
    const out = await s.run({ x: Tensor.from('float32', [2, 2], [0, 1, 2, 3]) });
    assert.deepEqual([...out.y.data], [1, 4, 9, 16]);
    assert.equal(b.build().irVersion, 8);
  });
});
