/**
 * TFLite tensor payloads as IR tensors: element types, fp16 → fp32 decoding, and permuting a
 * constant's bytes into the ONNX layout (filters OHWI → OIHW and the like) so weights need no
 * Transpose node and a per-channel quantization axis moves with its dim.
 */
import type { DType } from '../../../ir/dtype.js';
import { halfToFloat } from '../../../ir/float16.js';
import { Tensor } from '../../../ir/tensor.js';
import { TensorType } from '../model.js';

export const DTYPES: Record<number, DType | undefined> = {
  [TensorType.FLOAT32]: 'float32',
  [TensorType.FLOAT16]: 'float16',
  [TensorType.INT32]: 'int32',
  [TensorType.UINT8]: 'uint8',
  [TensorType.INT64]: 'int64',
  [TensorType.BOOL]: 'bool',
  [TensorType.INT16]: 'int16',
  [TensorType.INT8]: 'int8',
  [TensorType.FLOAT64]: 'float64',
  [TensorType.UINT64]: 'uint64',
  [TensorType.UINT32]: 'uint32',
  [TensorType.UINT16]: 'uint16',
  [TensorType.BFLOAT16]: 'bfloat16',
};

/** `data` as elements of `width` bytes (a copy only when the bytes are not aligned for it). */
function elements(data: Uint8Array, width: 1 | 2 | 4): Uint8Array | Uint16Array | Uint32Array {
  const bytes = data.byteOffset % width === 0 ? data : data.slice();
  if (width === 1) return bytes;
  const Ctor = width === 2 ? Uint16Array : Uint32Array;
  return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length / width);
}

/**
 * Bytes `data` of a row-major tensor of `dims` with `width`-byte elements, reordered by `perm`
 * (output dim i is input dim perm[i]). Elements move as whole 1/2/4-byte words; 8-byte ones as
 * two words.
 */
export function permuteBytes(data: Uint8Array, dims: readonly number[], perm: readonly number[], width: number): Uint8Array {
  const lanes = width === 8 ? 2 : 1;
  const word = (width === 8 ? 4 : width) as 1 | 2 | 4;
  const src = elements(data, word);
  const out = new (src.constructor as new (n: number) => Uint8Array | Uint16Array | Uint32Array)(src.length);
  const rank = dims.length;
  const outDims = perm.map((p) => dims[p]);
  const inStrides = new Array<number>(rank).fill(lanes);
  for (let i = rank - 2; i >= 0; i--) inStrides[i] = inStrides[i + 1] * dims[i + 1];
  const stride = perm.map((p) => inStrides[p]);
  const idx = new Array<number>(rank).fill(0);
  const count = src.length / lanes;
  const last = rank - 1;
  let from = 0;
  for (let o = 0; o < count; o++) {
    out[o * lanes] = src[from];
    if (lanes === 2) out[o * lanes + 1] = src[from + 1];
    // Advance the output index like an odometer, moving `from` along the input.
    let d = last;
    from += stride[d];
    while (++idx[d] === outDims[d] && d > 0) {
      from -= stride[d] * outDims[d];
      idx[d] = 0;
      d--;
      from += stride[d];
    }
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

let halfTable: Float32Array | undefined;

/** float16 bytes as a float32 tensor (through a 65536-entry table: MediaPipe ships fp16 weights). */
export function halfToFloat32(bytes: Uint8Array, dims: readonly number[]): Tensor {
  if (halfTable === undefined) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  const table = halfTable;
  const halves = elements(bytes, 2);
  const out = new Float32Array(halves.length);
  for (let i = 0; i < halves.length; i++) out[i] = table[halves[i]];
  return Tensor.from('float32', dims, out);
}

/** Integer values of a small constant (shapes, axes, paddings) as JS numbers. */
export function intValues(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}
