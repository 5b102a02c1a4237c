/**
 * Value types: tensors with (possibly symbolic) shapes, and the container types ONNX allows
 * (sequence, map, optional, sparse tensor, opaque).
 */
import type { DType } from './dtype.js';

/** A dimension: a size, a symbol (`N`, `batch`), or unknown (null). */
export type Dim = number | string | null;
export type Shape = Dim[];

interface TypeBase {
  /** ONNX type denotation, carried through unchanged. */
  denotation?: string;
}

export interface TensorType extends TypeBase {
  kind: 'tensor' | 'sparse_tensor';
  /** Undefined when the file leaves the element type out (allowed inside subgraphs). */
  dtype: DType | undefined;
  /** Undefined when the rank is unknown. */
  shape?: Shape;
  /** Per-dimension denotations, carried through unchanged. */
  dimDenotations?: Array<string | undefined>;
}

export interface SequenceType extends TypeBase {
  kind: 'sequence';
  elem: ValueType | undefined;
}

export interface MapType extends TypeBase {
  kind: 'map';
  key: DType | undefined;
  value: ValueType | undefined;
}

export interface OptionalType extends TypeBase {
  kind: 'optional';
  elem: ValueType | undefined;
}

export interface OpaqueType extends TypeBase {
  kind: 'opaque';
  domain: string;
  name: string;
}

export type ValueType = TensorType | SequenceType | MapType | OptionalType | OpaqueType;

export function tensorType(dtype: DType | undefined, shape?: Shape): TensorType {
  return shape === undefined ? { kind: 'tensor', dtype } : { kind: 'tensor', dtype, shape };
}

export function isTensorType(t: ValueType | undefined): t is TensorType {
  return t !== undefined && t.kind === 'tensor';
}

export function formatDim(d: Dim): string {
  return d === null ? '?' : String(d);
}

export function formatShape(shape: Shape | undefined): string {
  return shape === undefined ? '[*]' : `[${shape.map(formatDim).join(',')}]`;
}

export function formatType(t: ValueType | undefined): string {
  if (!t) return '?';
  switch (t.kind) {
    case 'tensor':
      return `${t.dtype ?? '?'}${formatShape(t.shape)}`;
    case 'sparse_tensor':
      return `sparse<${t.dtype ?? '?'}${formatShape(t.shape)}>`;
    case 'sequence':
      return `seq<${formatType(t.elem)}>`;
    case 'map':
      return `map<${t.key ?? '?'},${formatType(t.value)}>`;
    case 'optional':
      return `optional<${formatType(t.elem)}>`;
    case 'opaque':
      return `opaque<${t.domain}.${t.name}>`;
  }
}

export function sameType(a: ValueType | undefined, b: ValueType | undefined): boolean {
  return formatType(a) === formatType(b);
}

/** True when every dim is a known number. */
export function isStaticShape(shape: Shape | undefined): shape is number[] {
  return (shape ?? [null]).every((d) => typeof d === 'number');
}
