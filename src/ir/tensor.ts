/**
 * Tensors hold their elements as little-endian bytes, usually a view into the model file's
 * buffer: reading and writing a model never copies or unpacks weights. A typed view is made on
 * first use of `data` (without a copy when the bytes are suitably aligned).
 */
import { badInput } from '../errors.js';
import { arrayType, byteLength, type DType, is64Bit, lanes, type TypedArray } from './dtype.js';
import { bfloat16ToFloat, halfToFloat } from './float16.js';

export type Metadata = Array<[string, string]>;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** Element count of a shape. Throws on a negative or non-integer dim. */
export function shapeSize(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw badInput(`invalid tensor dimension ${d} in shape [${dims.join(',')}]`);
    n *= d;
  }
  return n;
}

export class Tensor {
  readonly dtype: DType;
  readonly dims: readonly number[];
  /** Optional carried fields of ONNX TensorProto (name, doc string, metadata) for lossless output. */
  name?: string;
  doc?: string;
  metadata?: Metadata;
  /** Fields of the file's TensorProto this version does not know, written back unchanged. */
  unknownFields?: Uint8Array[];
  private readonly raw: Uint8Array | undefined;
  private readonly strs: Uint8Array[] | undefined;
  private view: TypedArray | undefined;

  private constructor(dtype: DType, dims: readonly number[], raw?: Uint8Array, strs?: Uint8Array[], view?: TypedArray) {
    this.dtype = dtype;
    this.dims = Object.freeze([...dims]);
    this.raw = raw;
    this.strs = strs;
    this.view = view;
  }

  /** Wraps little-endian element bytes without copying them. */
  static fromBytes(dtype: DType, dims: readonly number[], bytes: Uint8Array): Tensor {
    if (dtype === 'string') throw new Error('string tensors are made with Tensor.fromStrings');
    const want = byteLength(dtype, shapeSize(dims) * lanes(dtype));
    if (bytes.byteLength !== want) {
      throw badInput(`tensor data holds ${bytes.byteLength} bytes but ${dtype}[${dims.join(',')}] needs ${want}`);
    }
    return new Tensor(dtype, dims, bytes);
  }

  /** Makes a tensor from a typed array of the dtype's storage type (not copied) or from numbers. */
  static from(dtype: DType, dims: readonly number[], values: TypedArray | ArrayLike<number> | readonly bigint[]): Tensor {
    const Ctor = arrayType(dtype);
    if (!Ctor) throw new Error('string tensors are made with Tensor.fromStrings');
    const count =
      dtype === 'int4' || dtype === 'uint4' || dtype === 'float4e2m1' ? byteLength(dtype, shapeSize(dims)) : shapeSize(dims) * lanes(dtype);
    if (values.length !== count) {
      throw badInput(`tensor has ${values.length} elements but ${dtype}[${dims.join(',')}] needs ${count}`);
    }
    let view: TypedArray;
    if (values instanceof Ctor) {
      view = values;
    } else if (is64Bit(dtype)) {
      const arr = new (Ctor as BigInt64ArrayConstructor)(count);
      for (let i = 0; i < count; i++) {
        const v = (values as ArrayLike<number | bigint>)[i];
        arr[i] = typeof v === 'bigint' ? v : toBigInt(Number(v), dtype === 'int64');
      }
      view = arr;
    } else {
      const arr = new (Ctor as Float32ArrayConstructor)(count);
      for (let i = 0; i < count; i++) arr[i] = Number((values as ArrayLike<number | bigint>)[i]);
      view = arr;
    }
    if (view.length !== count) {
      throw badInput(`tensor has ${view.length} elements but ${dtype}[${dims.join(',')}] needs ${count}`);
    }
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    return new Tensor(dtype, dims, bytes, undefined, view);
  }

  static fromStrings(dims: readonly number[], values: ReadonlyArray<string | Uint8Array>): Tensor {
    if (values.length !== shapeSize(dims)) {
      throw badInput(`string tensor has ${values.length} elements but shape [${dims.join(',')}] needs ${shapeSize(dims)}`);
    }
    return new Tensor(
      'string',
      dims,
      undefined,
      values.map((v) => (typeof v === 'string' ? utf8.encode(v) : v)),
    );
  }

  static scalar(dtype: DType, value: number | bigint): Tensor {
    return Tensor.from(dtype, [], typeof value === 'bigint' ? [value] : [value]);
  }

  static zeros(dtype: DType, dims: readonly number[]): Tensor {
    if (dtype === 'string') return Tensor.fromStrings(dims, new Array(shapeSize(dims)).fill(''));
    return Tensor.fromBytes(dtype, dims, new Uint8Array(byteLength(dtype, shapeSize(dims) * lanes(dtype))));
  }

  /** Number of elements. */
  get size(): number {
    let n = 1;
    for (const d of this.dims) n *= d;
    return n;
  }

  get rank(): number {
    return this.dims.length;
  }

  /** Stored little-endian bytes; not for string tensors. */
  get bytes(): Uint8Array {
    if (!this.raw) throw new Error('string tensors have no raw bytes; use .strings');
    return this.raw;
  }

  get byteLength(): number {
    if (this.raw) return this.raw.byteLength;
    let n = 0;
    for (const s of this.strs ?? []) n += s.byteLength;
    return n;
  }

  /** The elements as a typed array of the storage type (bit patterns for 16/8/4-bit floats). */
  get data(): TypedArray {
    if (this.view) return this.view;
    const Ctor = arrayType(this.dtype);
    if (!Ctor || !this.raw) throw new Error('string tensors have no typed data; use .strings');
    const raw = this.raw;
    const width = Ctor.BYTES_PER_ELEMENT;
    let view: TypedArray;
    if (raw.byteOffset % width === 0) {
      view = new Ctor(raw.buffer as ArrayBuffer, raw.byteOffset, raw.byteLength / width);
    } else {
      // Misaligned inside the file buffer: one copy into an aligned buffer.
      const copy = new Uint8Array(raw.byteLength);
      copy.set(raw);
      view = new Ctor(copy.buffer, 0, raw.byteLength / width);
    }
    this.view = view;
    return view;
  }

  /** String elements, decoded as UTF-8. */
  get strings(): string[] {
    if (!this.strs) throw new Error(`${this.dtype} tensor has no string elements`);
    return this.strs.map((s) => utf8Decoder.decode(s));
  }

  /** String elements as stored bytes (ONNX strings are byte strings). */
  get stringBytes(): Uint8Array[] {
    if (!this.strs) throw new Error(`${this.dtype} tensor has no string elements`);
    return this.strs;
  }

  /** Elements as JS numbers (int64 beyond 2^53 lose precision; INT64_MAX stays the largest value). */
  toNumbers(): number[] {
    const n = this.size * lanes(this.dtype);
    const out = new Array<number>(n);
    const d = this.data;
    switch (this.dtype) {
      case 'float16':
        for (let i = 0; i < n; i++) out[i] = halfToFloat(d[i] as number);
        return out;
      case 'bfloat16':
        for (let i = 0; i < n; i++) out[i] = bfloat16ToFloat(d[i] as number);
        return out;
      case 'int4':
      case 'uint4': {
        const signed = this.dtype === 'int4';
        for (let i = 0; i < n; i++) {
          const byte = d[i >> 1] as number;
          let v = i & 1 ? byte >> 4 : byte & 0xf;
          if (signed && v >= 8) v -= 16;
          out[i] = v;
        }
        return out;
      }
      default:
        if (this.dtype.startsWith('float8') || this.dtype === 'float4e2m1') {
          throw new Error(`${this.dtype} elements cannot be read as numbers yet`);
        }
        for (let i = 0; i < n; i++) out[i] = Number(d[i]);
        return out;
    }
  }

  /** Elements converted to float32 (for numeric work on any numeric dtype). */
  toFloat32(): Float32Array {
    if (this.dtype === 'float32') return this.data as Float32Array;
    return Float32Array.from(this.toNumbers());
  }

  /** The single element of a one-element tensor, as a number. */
  scalarValue(): number {
    if (this.size !== 1) throw new Error(`expected a one-element tensor, got [${this.dims.join(',')}]`);
    return this.toNumbers()[0];
  }

  /** Same elements, new shape (element counts must match). No copy. */
  reshape(dims: readonly number[]): Tensor {
    if (shapeSize(dims) !== this.size) {
      throw badInput(`cannot reshape [${this.dims.join(',')}] to [${dims.join(',')}]`);
    }
    return new Tensor(this.dtype, dims, this.raw, this.strs, this.view);
  }

  /** Element-wise and shape equality (bitwise for floats, so NaN equals the same NaN). */
  equals(other: Tensor): boolean {
    if (this.dtype !== other.dtype || this.dims.length !== other.dims.length) return false;
    for (let i = 0; i < this.dims.length; i++) if (this.dims[i] !== other.dims[i]) return false;
    if (this.strs || other.strs) {
      const a = this.stringBytes;
      const b = other.stringBytes;
      return a.length === b.length && a.every((s, i) => bytesEqual(s, b[i]));
    }
    return bytesEqual(this.bytes, other.bytes);
  }

  toString(): string {
    return `${this.dtype}[${this.dims.join(',')}]`;
  }
}

/** A number as a 64-bit integer element: truncated, NaN → 0, out-of-range values saturate. */
function toBigInt(x: number, signed: boolean): bigint {
  if (Number.isNaN(x)) return 0n;
  const lo = signed ? -(2 ** 63) : 0;
  if (x <= lo) return signed ? -(2n ** 63n) : 0n;
  if (x >= 2 ** 64 || (signed && x >= 2 ** 63)) return signed ? 2n ** 63n - 1n : 2n ** 64n - 1n;
  return BigInt(Math.trunc(x));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A sparse tensor (ONNX SparseTensorProto): non-default values, their indices, and the dense shape. */
export interface SparseTensor {
  values: Tensor;
  indices: Tensor;
  dims: number[];
}
