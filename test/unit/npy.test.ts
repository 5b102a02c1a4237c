import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseNpy, serializeNpy } from '../../src/data/npy.js';
import { Tensor } from '../../src/ir/tensor.js';

describe('.npy', () => {
  it('round-trips tensors of the numpy dtypes', () => {
    for (const t of [
      Tensor.from('float32', [2, 3], [1, 2, 3, 4, 5, 6]),
      Tensor.from('int64', [4], [1, -2, 3, 2 ** 40]),
      Tensor.from('uint8', [1], [255]),
      Tensor.from('bool', [2], [1, 0]),
      Tensor.from('float32', [], [3.5]),
    ]) {
      const bytes = serializeNpy(t);
      assert.equal((bytes.length - t.byteLength) % 64, 0, 'data starts on a 64-byte boundary');
      assert.ok(parseNpy(bytes).equals(t));
    }
  });

  it('reads a file numpy wrote', () => {
    // numpy.save of np.arange(3, dtype='<i4'), header version 1.0
    const header = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }";
    const padded = header + ' '.repeat(128 - 10 - header.length - 1) + '\n';
    const bytes = new Uint8Array(128 + 12);
    bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, padded.length, 0]);
    bytes.set(new TextEncoder().encode(padded), 10);
    bytes.set(new Uint8Array(Int32Array.from([0, 1, 2]).buffer), 128);
    assert.deepEqual([...parseNpy(bytes).data], [0, 1, 2]);
  });

  it('refuses broken and unsupported files with a reason', () => {
    const good = serializeNpy(Tensor.from('float32', [4], [1, 2, 3, 4]));
    assert.throws(
      () => parseNpy(good.subarray(0, good.length - 4), 'x.npy'),
      /x\.npy: holds 12 data bytes but shape \(4\) of <f4 needs 16/,
    );
    assert.throws(() => parseNpy(new Uint8Array(20), 'x.npy'), /not a \.npy file/);
    const fortran = new TextDecoder('latin1').decode(good).replace("'fortran_order': False", "'fortran_order': True ");
    assert.throws(() => parseNpy(Uint8Array.from(fortran, (c) => c.charCodeAt(0))), /Fortran-ordered/);
  });
});
