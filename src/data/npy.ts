/**
 * NumPy .npy files (format versions 1–3): https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 * Parsing never trusts the header: the declared shape must match the bytes that follow.
 */
import { badInput } from '../errors.js';
import { byteLength, type DType } from '../ir/dtype.js';
import { shapeSize, Tensor } from '../ir/tensor.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** numpy dtype descr (without byte order) ↔ our dtype. */
const DESCR: Record<string, DType> = {
  f4: 'float32',
  f8: 'float64',
  f2: 'float16',
  i1: 'int8',
  u1: 'uint8',
  i2: 'int16',
  u2: 'uint16',
  i4: 'int32',
  u4: 'uint32',
  i8: 'int64',
  u8: 'uint64',
  b1: 'bool',
};

export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= 10 && MAGIC.every((b, i) => bytes[i] === b);
}

export function parseNpy(bytes: Uint8Array, source = '.npy file'): Tensor {
  if (!isNpy(bytes)) throw badInput(`${source}: not a .npy file (bad magic bytes)`);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let offset: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    offset = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw badInput(`${source}: truncated .npy header`);
    headerLen = view.getUint32(8, true);
    offset = 12;
  } else {
    throw badInput(`${source}: unsupported .npy version ${major}`);
  }
  if (offset + headerLen > bytes.length) throw badInput(`${source}: truncated .npy header`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(offset, offset + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw badInput(`${source}: malformed .npy header`);
  if (fortran === 'True') throw badInput(`${source}: Fortran-ordered arrays are not supported; save with numpy.ascontiguousarray`);
  const order = descr[0];
  const dtype = DESCR[descr.slice(1)];
  if (!dtype) throw badInput(`${source}: unsupported .npy dtype "${descr}"`);
  const itemSize = Number(descr.slice(2));
  if (order === '>' && itemSize > 1) throw badInput(`${source}: big-endian arrays are not supported; save with a little-endian dtype`);
  const dims = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const n = Number(s.replace(/L$/, ''));
      if (!Number.isSafeInteger(n) || n < 0) throw badInput(`${source}: invalid shape (${shapeText})`);
      return n;
    });
  const start = offset + headerLen;
  const want = byteLength(dtype, shapeSize(dims));
  if (bytes.length - start < want)
    throw badInput(`${source}: holds ${bytes.length - start} data bytes but shape (${dims.join(', ')}) of ${descr} needs ${want}`);
  return Tensor.fromBytes(dtype, dims, bytes.subarray(start, start + want));
}

export function serializeNpy(t: Tensor): Uint8Array {
  const descr = Object.entries(DESCR).find(([, d]) => d === t.dtype)?.[0];
  if (!descr) throw badInput(`cannot write ${t.dtype} tensors as .npy`);
  const order = descr[1] === '1' ? '|' : '<';
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let header = `{'descr': '${order}${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad so the data starts on a 64-byte boundary, header ending in a newline.
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + t.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(t.bytes, 10 + header.length);
  return out;
}
