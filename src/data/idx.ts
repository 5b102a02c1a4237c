/** The IDX format of MNIST-style datasets (magic: 0, 0, type code, rank; big-endian u32 dims; data). */
import { badInput } from '../errors.js';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Reads an unsigned-byte IDX array (the only element type MNIST and Fashion-MNIST use). */
export function parseIdx(bytes: Uint8Array, source = 'IDX file'): IdxArray {
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw badInput(`${source}: not an IDX file`);
  if (bytes[2] !== 0x08) throw badInput(`${source}: IDX element type 0x${bytes[2].toString(16)} is not unsigned byte`);
  const rank = bytes[3];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4 + 4 * rank) throw badInput(`${source}: truncated IDX header`);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (bytes.length - start < count) throw badInput(`${source}: holds ${bytes.length - start} bytes, its header promises ${count}`);
  return { dims, data: bytes.subarray(start, start + count) };
}
