/** NumPy .npz archives (zip files of .npy arrays, stored or deflated), read with fflate. */
import { unzipSync } from 'fflate';
import { badInput, firstLine } from '../errors.js';
import type { Tensor } from '../ir/tensor.js';
import { parseNpy } from './npy.js';

export function isNpz(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/** The arrays of an .npz, by name (without the .npy suffix). */
export function parseNpz(bytes: Uint8Array, source = '.npz file'): Map<string, Tensor> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw badInput(`${source}: not a readable .npz archive (${firstLine(e)})`);
  }
  const out = new Map<string, Tensor>();
  for (const [name, data] of Object.entries(files)) {
    if (!name.endsWith('.npy')) continue;
    out.set(name.slice(0, -4), parseNpy(data, `${source}:${name}`));
  }
  if (out.size === 0) throw badInput(`${source}: the archive holds no .npy arrays`);
  return out;
}
