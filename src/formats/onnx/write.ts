/**
 * IR → ONNX protobuf. Weights are written from their byte views (one copy, into the output
 * buffer). Large weights can go to an external data file instead; protobuf itself cannot hold
 * more than 2 GB.
 */
import { badInput } from '../../errors.js';
import type { Attribute } from '../../ir/attributes.js';
import { dtypeCode } from '../../ir/dtype.js';
import type { Graph, Model, ModelFunction, Node, Value } from '../../ir/graph.js';
import type { Metadata, SparseTensor, Tensor } from '../../ir/tensor.js';
import type { ValueType } from '../../ir/types.js';
import { encodeModel, numberToInt64, onnx } from './schema.js';

/** Protobuf messages cannot pass 2 GB; keep a margin for the graph structure. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;
const EXTERNAL_ALIGN = 64;

export interface ExternalDataOptions {
  /** File name of the data file, relative to the model file. */
  location: string;
  /** Initializers smaller than this stay inside the model (default 1024 bytes). */
  minBytes?: number;
}

export interface WriteOptions {
  externalData?: ExternalDataOptions;
}

export interface WrittenModel {
  /** The .onnx file contents. */
  model: Uint8Array;
  /** The external data file, when weights were moved out: chunks to write in order. */
  external?: { location: string; chunks: Uint8Array[]; byteLength: number };
}

/** Bytes of tensor data the model holds (initializers and tensor attributes, all graphs). */
export function tensorBytes(model: Model): number {
  let total = 0;
  const visit = (g: Graph): void => {
    for (const v of g.initializers) total += v.initializer?.byteLength ?? 0;
    for (const n of g.nodes) {
      for (const a of n.attrs.values()) {
        if (a.type === 'tensor') total += a.value.byteLength;
        if (a.type === 'graph') visit(a.value);
        if (a.type === 'graphs') for (const sg of a.value) visit(sg);
      }
    }
  };
  visit(model.graph);
  return total;
}

/** True when the model cannot be written as one protobuf file. */
export function needsExternalData(model: Model): boolean {
  return tensorBytes(model) > PROTOBUF_LIMIT - 64 * 1024 * 1024;
}

export function writeOnnx(model: Model, options: WriteOptions = {}): WrittenModel {
  if (!options.externalData && needsExternalData(model)) {
    throw badInput(
      `the model holds ${(tensorBytes(model) / 2 ** 30).toFixed(2)} GB of weights, above protobuf's 2 GB limit; write it with external data (--external-data)`,
    );
  }
  const w = new Writer(options.externalData);
  const proto = w.model(model);
  const bytes = encodeModel(proto, tensorBytes(model) - w.offset);
  const result: WrittenModel = { model: bytes };
  if (options.externalData && w.chunks.length > 0) {
    result.external = { location: options.externalData.location, chunks: w.chunks, byteLength: w.offset };
  }
  return result;
}

/** Encodes one tensor as a TensorProto (the ONNX test data format). */
export function writeTensorProto(tensor: Tensor, name?: string): Uint8Array {
  return onnx.TensorProto.encode(new Writer(undefined).tensor(tensor, name ?? tensor.name)).finish();
}

function metadata(md: Metadata | undefined): onnx.StringStringEntryProto.$Properties[] | undefined {
  return md?.map(([key, value]) => ({ key, value }));
}

class Writer {
  readonly chunks: Uint8Array[] = [];
  offset = 0;
  private readonly external: ExternalDataOptions | undefined;

  constructor(external: ExternalDataOptions | undefined) {
    this.external = external;
  }

  model(m: Model): onnx.ModelProto.$Properties {
    const p: onnx.ModelProto.$Properties = {
      irVersion: m.irVersion,
      opsetImport: [...m.opsetImports].map(([domain, version]) => ({ domain, version })),
      graph: this.graph(m.graph),
    };
    if (m.producerName !== undefined) p.producerName = m.producerName;
    if (m.producerVersion !== undefined) p.producerVersion = m.producerVersion;
    if (m.domain !== undefined) p.domain = m.domain;
    if (m.modelVersion !== undefined) p.modelVersion = numberToInt64(m.modelVersion);
    if (m.doc !== undefined) p.docString = m.doc;
    if (m.metadata) p.metadataProps = metadata(m.metadata);
    if (m.functions.length > 0) p.functions = m.functions.map((f) => this.function(f));
    if (m.trainingInfo.length > 0) p.trainingInfo = m.trainingInfo as onnx.TrainingInfoProto.$Properties[];
    if (m.deviceConfigurations.length > 0) p.configuration = m.deviceConfigurations as onnx.DeviceConfigurationProto.$Properties[];
    if (m.unknownFields) p.$unknowns = m.unknownFields;
    return p;
  }

  private function(f: ModelFunction): onnx.FunctionProto.$Properties {
    const p: onnx.FunctionProto.$Properties = {
      name: f.name,
      domain: f.domain,
      input: f.body.inputs.map((v) => v.name),
      output: f.body.outputs.map((v) => v.name),
      attribute: f.attributeNames,
      node: f.body.nodes.map((n) => this.node(n)),
      opsetImport: [...f.opsetImports].map(([domain, version]) => ({ domain, version })),
    };
    if (f.attributeDefaults.length > 0) p.attributeProto = f.attributeDefaults.map(([name, a]) => this.attribute(name, a));
    const vi = this.intermediateValueInfo(f.body);
    if (vi.length > 0) p.valueInfo = vi;
    if (f.overload !== undefined) p.overload = f.overload;
    if (f.doc !== undefined) p.docString = f.doc;
    if (f.metadata) p.metadataProps = metadata(f.metadata);
    return p;
  }

  private graph(g: Graph): onnx.GraphProto.$Properties {
    const p: onnx.GraphProto.$Properties = {
      node: g.nodes.map((n) => this.node(n)),
      name: g.name,
      input: g.inputs.map((v) => this.valueInfo(v)),
      output: g.outputs.map((v) => this.valueInfo(v)),
    };
    const dense = g.initializers.filter((v) => v.initializer);
    if (dense.length > 0) p.initializer = dense.map((v) => this.tensor(v.initializer as Tensor, v.name, true));
    const sparse = g.initializers.filter((v) => v.sparseInitializer);
    if (sparse.length > 0) p.sparseInitializer = sparse.map((v) => this.sparse(v.sparseInitializer as SparseTensor, v.name));
    const vi = this.intermediateValueInfo(g);
    if (vi.length > 0) p.valueInfo = vi;
    if (g.doc !== undefined) p.docString = g.doc;
    if (g.metadata) p.metadataProps = metadata(g.metadata);
    if (g.quantizationAnnotations) {
      p.quantizationAnnotation = g.quantizationAnnotations.map((a) => ({
        tensorName: a.tensorName,
        quantParameterTensorNames: metadata(a.entries),
      }));
    }
    if (g.unknownFields) p.$unknowns = g.unknownFields;
    return p;
  }

  /** value_info for values made inside the graph that carry a type or annotations. */
  private intermediateValueInfo(g: Graph): onnx.ValueInfoProto.$Properties[] {
    const out: onnx.ValueInfoProto.$Properties[] = [];
    const outputs = new Set(g.outputs);
    for (const n of g.nodes) {
      for (const v of n.outputs) {
        if (!v || outputs.has(v)) continue;
        // onnxruntime rejects value_info whose tensor type has no element type.
        const informative = v.type && !(v.type.kind === 'tensor' && v.type.dtype === undefined);
        if (informative || v.doc !== undefined || v.metadata || v.unknownFields) out.push(this.valueInfo(v));
      }
    }
    return out;
  }

  private valueInfo(v: Value): onnx.ValueInfoProto.$Properties {
    const p: onnx.ValueInfoProto.$Properties = { name: v.name };
    if (v.type) p.type = this.type(v.type);
    if (v.doc !== undefined) p.docString = v.doc;
    if (v.metadata) p.metadataProps = metadata(v.metadata);
    if (v.unknownFields) p.$unknowns = v.unknownFields;
    return p;
  }

  type(t: ValueType): onnx.TypeProto.$Properties {
    const p: onnx.TypeProto.$Properties = {};
    switch (t.kind) {
      case 'tensor':
      case 'sparse_tensor': {
        const tt: onnx.TypeProto.Tensor.$Properties = {};
        if (t.dtype) tt.elemType = dtypeCode(t.dtype);
        if (t.shape) {
          tt.shape = {
            dim: t.shape.map((d, i) => {
              const dim: onnx.TensorShapeProto.Dimension.$Properties = {};
              if (typeof d === 'number') dim.dimValue = numberToInt64(d);
              else if (typeof d === 'string') dim.dimParam = d;
              const den = t.dimDenotations?.[i];
              if (den !== undefined) dim.denotation = den;
              return dim;
            }),
          };
        }
        if (t.kind === 'tensor') p.tensorType = tt;
        else p.sparseTensorType = tt;
        break;
      }
      case 'sequence':
        p.sequenceType = t.elem ? { elemType: this.type(t.elem) } : {};
        break;
      case 'map': {
        const mt: onnx.TypeProto.Map.$Properties = {};
        if (t.key) mt.keyType = dtypeCode(t.key);
        if (t.value) mt.valueType = this.type(t.value);
        p.mapType = mt;
        break;
      }
      case 'optional':
        p.optionalType = t.elem ? { elemType: this.type(t.elem) } : {};
        break;
      case 'opaque':
        p.opaqueType = { domain: t.domain, name: t.name };
        break;
    }
    if (t.denotation !== undefined) p.denotation = t.denotation;
    return p;
  }

  private node(n: Node): onnx.NodeProto.$Properties {
    const p: onnx.NodeProto.$Properties = {
      input: n.inputs.map((v) => (v ? v.name : '')),
      output: n.outputs.map((v) => (v ? v.name : '')),
      opType: n.opType,
    };
    if (n.name) p.name = n.name;
    if (n.domain) p.domain = n.domain;
    if (n.attrs.size > 0) p.attribute = [...n.attrs].map(([name, a]) => this.attribute(name, a));
    if (n.doc !== undefined) p.docString = n.doc;
    if (n.overload !== undefined) p.overload = n.overload;
    if (n.metadata) p.metadataProps = metadata(n.metadata);
    if (n.deviceConfigurations) p.deviceConfigurations = n.deviceConfigurations as onnx.NodeDeviceConfigurationProto.$Properties[];
    if (n.unknownFields) (p as { $unknowns?: Uint8Array[] }).$unknowns = n.unknownFields;
    return p;
  }

  attribute(name: string, a: Attribute): onnx.AttributeProto.$Properties {
    const A = onnx.AttributeProto.AttributeType;
    const p: onnx.AttributeProto.$Properties = { name };
    const enc = new TextEncoder();
    switch (a.type) {
      case 'float':
        p.type = A.FLOAT;
        p.f = a.value;
        break;
      case 'int':
        p.type = A.INT;
        p.i = numberToInt64(a.value);
        break;
      case 'string':
        p.type = A.STRING;
        p.s = a.raw ?? enc.encode(a.value);
        break;
      case 'tensor':
        p.type = A.TENSOR;
        p.t = this.tensor(a.value, a.value.name, false);
        break;
      case 'graph':
        p.type = A.GRAPH;
        p.g = this.graph(a.value);
        break;
      case 'sparse_tensor':
        p.type = A.SPARSE_TENSOR;
        p.sparseTensor = this.sparse(a.value, a.value.values.name);
        break;
      case 'type_proto':
        p.type = A.TYPE_PROTO;
        p.tp = this.type(a.value);
        break;
      case 'floats':
        p.type = A.FLOATS;
        p.floats = a.value;
        break;
      case 'ints':
        p.type = A.INTS;
        p.ints = a.value.map(numberToInt64);
        break;
      case 'strings':
        p.type = A.STRINGS;
        p.strings = a.raw ?? a.value.map((s) => enc.encode(s));
        break;
      case 'tensors':
        p.type = A.TENSORS;
        p.tensors = a.value.map((t) => this.tensor(t, t.name, false));
        break;
      case 'graphs':
        p.type = A.GRAPHS;
        p.graphs = a.value.map((g) => this.graph(g));
        break;
      case 'sparse_tensors':
        p.type = A.SPARSE_TENSORS;
        p.sparseTensors = a.value.map((s) => this.sparse(s, s.values.name));
        break;
      case 'type_protos':
        p.type = A.TYPE_PROTOS;
        p.typeProtos = a.value.map((t) => this.type(t));
        break;
      case 'undefined':
        break;
    }
    if (a.refAttrName !== undefined) p.refAttrName = a.refAttrName;
    if (a.doc !== undefined) p.docString = a.doc;
    if (a.unknownFields) p.$unknowns = a.unknownFields;
    return p;
  }

  tensor(t: Tensor, name: string | undefined, mayBeExternal = false): onnx.TensorProto.$Properties {
    const p: onnx.TensorProto.$Properties = {
      dims: t.dims.map(numberToInt64),
      dataType: dtypeCode(t.dtype),
    };
    if (name) p.name = name;
    if (t.dtype === 'string') {
      p.stringData = t.stringBytes;
    } else if (mayBeExternal && this.external && t.byteLength >= (this.external.minBytes ?? 1024)) {
      const pad = (EXTERNAL_ALIGN - (this.offset % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
      if (pad > 0) {
        this.chunks.push(new Uint8Array(pad));
        this.offset += pad;
      }
      p.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      p.externalData = [
        { key: 'location', value: this.external.location },
        { key: 'offset', value: String(this.offset) },
        { key: 'length', value: String(t.byteLength) },
      ];
      this.chunks.push(t.bytes);
      this.offset += t.byteLength;
    } else {
      p.rawData = t.bytes;
    }
    if (t.doc !== undefined) p.docString = t.doc;
    if (t.metadata) p.metadataProps = metadata(t.metadata);
    if (t.unknownFields) p.$unknowns = t.unknownFields;
    return p;
  }

  private sparse(s: SparseTensor, name: string | undefined): onnx.SparseTensorProto.$Properties {
    return {
      values: this.tensor(s.values, name),
      indices: this.tensor(s.indices, s.indices.name),
      dims: s.dims.map(numberToInt64),
    };
  }
}
