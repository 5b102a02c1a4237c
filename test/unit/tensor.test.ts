import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bfloat16ToFloat, floatToBfloat16, floatToHalf, halfToFloat } from '../../src/ir/float16.js';
import { Tensor } from '../../src/ir/tensor.js';

describe('Tensor', () => {
  it('views file bytes without copying when aligned, and copies once when not', () => {
    const buf = new Uint8Array(20);
    new Float32Array(buf.buffer, 4, 2).set([1.5, -2]);
    const aligned = Tensor.fromBytes('float32', [2], buf.subarray(4, 12));
    assert.equal((aligned.data as Float32Array).buffer, buf.buffer);
    assert.deepEqual([...aligned.data], [1.5, -2]);
    const shifted = new Uint8Array(21);
    shifted.set(buf.subarray(4, 12), 1);
    const misaligned = Tensor.fromBytes('float32', [2], shifted.subarray(1, 9));
    assert.deepEqual([...misaligned.data], [1.5, -2]);
    assert.notEqual((misaligned.data as Float32Array).buffer, shifted.buffer);
  });

  it('refuses data that does not fit the shape', () => {
    assert.throws(() => Tensor.fromBytes('float32', [3], new Uint8Array(8)), /needs 12/);
    assert.throws(() => Tensor.from('int32', [2, 2], [1, 2, 3]), /needs 4/);
    assert.throws(() => Tensor.fromBytes('float32', [-1], new Uint8Array(0)), /invalid tensor dimension/);
  });

  it('keeps int64 exact and saturates numbers beyond its range', () => {
    const t = Tensor.from('int64', [3], [2 ** 63, -(2 ** 64), 7]);
    assert.deepEqual([...(t.data as BigInt64Array)], [2n ** 63n - 1n, -(2n ** 63n), 7n]);
  });

  it('reads 4-bit, float16 and bfloat16 elements as numbers', () => {
    assert.deepEqual(Tensor.fromBytes('int4', [3], Uint8Array.from([0xf7, 0x08])).toNumbers(), [7, -1, -8]);
    assert.deepEqual(Tensor.fromBytes('uint4', [2], Uint8Array.from([0x21])).toNumbers(), [1, 2]);
    assert.deepEqual(Tensor.from('float16', [2], Uint16Array.from([0x3c00, 0xc000])).toNumbers(), [1, -2]);
    assert.deepEqual(Tensor.from('bfloat16', [1], Uint16Array.from([0x3f80])).toNumbers(), [1]);
  });

  it('holds strings as bytes', () => {
    const t = Tensor.fromStrings([2], ['héllo', 'x']);
    assert.deepEqual(t.strings, ['héllo', 'x']);
    assert.equal(t.byteLength, 7);
  });
});

describe('16-bit floats', () => {
  it('round-trips every half value', () => {
    for (let h = 0; h < 0x10000; h++) {
      const f = halfToFloat(h);
      if (Number.isNaN(f)) continue;
      assert.equal(floatToHalf(f), h, `half 0x${h.toString(16)}`);
    }
  });

  it('rounds to nearest even', () => {
    assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie → even
    assert.equal(floatToHalf(1 + 3 * 2 ** -11), 0x3c02);
    assert.equal(floatToHalf(65520), 0x7c00); // overflow → inf
    assert.equal(floatToBfloat16(bfloat16ToFloat(0x3f81)), 0x3f81);
    assert.equal(floatToBfloat16(1.00390625), 0x3f80); // tie → even
  });
});
