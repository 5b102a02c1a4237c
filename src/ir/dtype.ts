/**
 * Element types. Names follow onnxruntime-js (`float32`, `int64`, …) so tensors pass to the
 * runtime without renaming; the numeric codes are ONNX's TensorProto.DataType values.
 */

export type DType =
  | 'float32'
  | 'uint8'
  | 'int8'
  | 'uint16'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'string'
  | 'bool'
  | 'float16'
  | 'float64'
  | 'uint32'
  | 'uint64'
  | 'complex64'
  | 'complex128'
  | 'bfloat16'
  | 'float8e4m3fn'
  | 'float8e4m3fnuz'
  | 'float8e5m2'
  | 'float8e5m2fnuz'
  | 'uint4'
  | 'int4'
  | 'float4e2m1'
  | 'float8e8m0';

/** Typed arrays a tensor's elements can be viewed as. */
export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

type ArrayCtor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor;

interface DTypeInfo {
  /** ONNX TensorProto.DataType code. */
  code: number;
  /** Bits per element as stored (4 for the packed 4-bit types, 0 for string). */
  bits: number;
  /** The typed array that holds the stored elements (bit patterns for float16/bfloat16/float8). */
  array: ArrayCtor | undefined;
}

const INFO: Record<DType, DTypeInfo> = {
  float32: { code: 1, bits: 32, array: Float32Array },
  uint8: { code: 2, bits: 8, array: Uint8Array },
  int8: { code: 3, bits: 8, array: Int8Array },
  uint16: { code: 4, bits: 16, array: Uint16Array },
  int16: { code: 5, bits: 16, array: Int16Array },
  int32: { code: 6, bits: 32, array: Int32Array },
  int64: { code: 7, bits: 64, array: BigInt64Array },
  string: { code: 8, bits: 0, array: undefined },
  bool: { code: 9, bits: 8, array: Uint8Array },
  float16: { code: 10, bits: 16, array: Uint16Array },
  float64: { code: 11, bits: 64, array: Float64Array },
  uint32: { code: 12, bits: 32, array: Uint32Array },
  uint64: { code: 13, bits: 64, array: BigUint64Array },
  complex64: { code: 14, bits: 64, array: Float32Array },
  complex128: { code: 15, bits: 128, array: Float64Array },
  bfloat16: { code: 16, bits: 16, array: Uint16Array },
  float8e4m3fn: { code: 17, bits: 8, array: Uint8Array },
  float8e4m3fnuz: { code: 18, bits: 8, array: Uint8Array },
  float8e5m2: { code: 19, bits: 8, array: Uint8Array },
  float8e5m2fnuz: { code: 20, bits: 8, array: Uint8Array },
  uint4: { code: 21, bits: 4, array: Uint8Array },
  int4: { code: 22, bits: 4, array: Uint8Array },
  float4e2m1: { code: 23, bits: 4, array: Uint8Array },
  float8e8m0: { code: 24, bits: 8, array: Uint8Array },
};

const BY_CODE = new Map<number, DType>((Object.keys(INFO) as DType[]).map((d) => [INFO[d].code, d]));

export const ALL_DTYPES: readonly DType[] = Object.keys(INFO) as DType[];

export function isDType(s: string): s is DType {
  return Object.hasOwn(INFO, s);
}

export function dtypeFromCode(code: number): DType | undefined {
  return BY_CODE.get(code);
}

export function dtypeCode(d: DType): number {
  return INFO[d].code;
}

export function dtypeBits(d: DType): number {
  return INFO[d].bits;
}

/** Bytes needed to store `count` elements (4-bit types pack two per byte). */
export function byteLength(d: DType, count: number): number {
  return Math.ceil((count * INFO[d].bits) / 8);
}

/** The typed array class that views a tensor's stored elements, or undefined for strings. */
export function arrayType(d: DType): ArrayCtor | undefined {
  return INFO[d].array;
}

/** Stored elements per logical element: 2 for complex types (real, imaginary), else 1. */
export function lanes(d: DType): number {
  return d === 'complex64' || d === 'complex128' ? 2 : 1;
}

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16' || d.startsWith('float8') || d === 'float4e2m1';
}

export function isInteger(d: DType): boolean {
  return /^u?int(4|8|16|32|64)$/.test(d);
}

export function isSigned(d: DType): boolean {
  return d.startsWith('int') || isFloat(d);
}

export function is64Bit(d: DType): d is 'int64' | 'uint64' {
  return d === 'int64' || d === 'uint64';
}

const INTEGER_RANGES: Partial<Record<DType, readonly [number, number]>> = {
  bool: [0, 1],
  int4: [-8, 7],
  uint4: [0, 15],
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  int64: [-(2 ** 63), 2 ** 63],
  uint64: [0, 2 ** 64],
};

/** Smallest and largest values a dtype holds (±Infinity for floats and strings). */
export function valueRange(d: DType): readonly [number, number] {
  return INTEGER_RANGES[d] ?? [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY];
}
