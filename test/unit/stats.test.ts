import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { modelStats } from '../../src/eval/stats.js';
import { inferShapes } from '../../src/ops/infer.js';
import { smallConvNet } from '../helpers.js';

describe('model figures', () => {
  it('counts nodes, parameters and MACs (batch taken as 1)', () => {
    const m = smallConvNet();
    inferShapes(m);
    const s = modelStats(m);
    assert.equal(s.nodes, 5);
    assert.deepEqual(s.ops, { Conv: 1, Flatten: 1, Gemm: 1, GlobalAveragePool: 1, Relu: 1 });
    assert.equal(s.params, 108 + 20 + 5);
    assert.equal(s.weightBytes, (108 + 20 + 5) * 4);
    // Conv: 4 out channels × 8×8 × (3×3×3); Gemm: 5 outputs × 4 inputs.
    assert.equal(s.macs, 4 * 64 * 27 + 20);
    assert.deepEqual(s.assumed, ['N']);
  });
});
