/** Node attributes, one variant per ONNX AttributeProto type. */
import type { Graph } from './graph.js';
import type { SparseTensor, Tensor } from './tensor.js';
import type { ValueType } from './types.js';

interface AttrCommon {
  /** Inside a function body: the name of the caller's attribute this one refers to. */
  refAttrName?: string;
  doc?: string;
  /** Fields of the file's AttributeProto this version does not know, written back unchanged. */
  unknownFields?: Uint8Array[];
}

export type Attribute = AttrCommon &
  (
    | { type: 'float'; value: number }
    | { type: 'int'; value: number }
    /** `raw` keeps the exact bytes when they are not valid UTF-8 (ONNX strings are bytes). */
    | { type: 'string'; value: string; raw?: Uint8Array }
    | { type: 'tensor'; value: Tensor }
    | { type: 'graph'; value: Graph }
    | { type: 'sparse_tensor'; value: SparseTensor }
    | { type: 'type_proto'; value: ValueType }
    | { type: 'floats'; value: number[] }
    | { type: 'ints'; value: number[] }
    | { type: 'strings'; value: string[]; raw?: Uint8Array[] }
    | { type: 'tensors'; value: Tensor[] }
    | { type: 'graphs'; value: Graph[] }
    | { type: 'sparse_tensors'; value: SparseTensor[] }
    | { type: 'type_protos'; value: ValueType[] }
    /** A reference-only attribute (ref_attr_name) whose type the file left undefined. */
    | { type: 'undefined'; value: undefined }
  );

export type AttributeType = Attribute['type'];

/** What the builder accepts for an attribute: plain JS values, or an explicit Attribute. */
export type AttrInput = number | string | readonly number[] | readonly string[] | Tensor | Graph | Attribute;

export const attr = {
  float: (value: number): Attribute => ({ type: 'float', value }),
  int: (value: number): Attribute => ({ type: 'int', value }),
  floats: (value: number[]): Attribute => ({ type: 'floats', value }),
  ints: (value: number[]): Attribute => ({ type: 'ints', value }),
  string: (value: string): Attribute => ({ type: 'string', value }),
};

export function isAttribute(x: unknown): x is Attribute {
  return typeof x === 'object' && x !== null && 'type' in x && 'value' in x && typeof (x as { type: unknown }).type === 'string';
}

/** Graphs held by an attribute (If branches, Loop and Scan bodies). */
export function attributeGraphs(a: Attribute): Graph[] {
  if (a.type === 'graph') return [a.value];
  if (a.type === 'graphs') return a.value;
  return [];
}
