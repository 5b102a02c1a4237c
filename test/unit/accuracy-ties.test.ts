/** Top-1/top-5 counting follows arg-max: a tie goes to the first class, never to the label. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countHits } from '../../src/eval/accuracy.js';

describe('countHits', () => {
  it('counts a tie as a hit only when the label is the first of the tied classes', () => {
    // Row 0: classes 0 and 2 tie at the top, label 2 → arg-max is 0: a miss. Row 1: same scores, label 0: a hit.
    const scores = Float32Array.from([5, 1, 5, 0, 5, 1, 5, 0]);
    assert.deepEqual(countHits(scores, 4, [2, 0], 2), { top1: 1, top5: 2 });
  });

  it('ranks by strictly higher scores otherwise', () => {
    const scores = Float32Array.from([0.1, 0.7, 0.2, 0.9, 0.05, 0.05]);
    assert.deepEqual(countHits(scores, 6, [3], 1), { top1: 1, top5: 1 });
    assert.deepEqual(countHits(scores, 6, [1], 1), { top1: 0, top5: 1 });
    // Label 5 ties with class 4 below it and ranks sixth: outside the top 5.
    assert.deepEqual(countHits(scores, 6, [5], 1), { top1: 0, top5: 0 });
  });
});
