import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bindDims, broadcastShapes, dimDiv, dimMul, dimProduct } from '../../src/ir/dims.js';

describe('symbolic dims', () => {
  it('multiplies and divides monomials', () => {
    assert.equal(dimMul('N', 3), '3*N');
    assert.equal(dimMul('3*N', 'S'), '3*N*S');
    assert.equal(dimDiv('3*N*S', 'N*S'), 3);
    assert.equal(dimDiv('N', 2), null);
    assert.equal(dimProduct(['N', 3, 224, 224]), '150528*N');
    assert.equal(dimMul('N', null), null);
    assert.equal(dimMul(0, null), 0);
  });

  it('broadcasts with numpy rules', () => {
    assert.deepEqual(
      broadcastShapes([
        ['N', 1, 5],
        [3, 1],
      ]),
      ['N', 3, 5],
    );
    assert.deepEqual(broadcastShapes([['N'], ['N']]), ['N']);
    assert.deepEqual(broadcastShapes([['N'], ['M']]), [null]);
    assert.match(String(broadcastShapes([[2], [3]])), /cannot broadcast/);
  });

  it('binds symbols to values', () => {
    assert.deepEqual(bindDims(['N', '3*N', 'S'], new Map([['N', 2]])), [2, 6, 'S']);
  });
});
