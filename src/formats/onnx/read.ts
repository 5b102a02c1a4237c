/**
 * ONNX protobuf → IR. Spec: https://github.com/onnx/onnx/blob/main/docs/IR.md
 *
 * Weights stay views into the input bytes. Names are resolved through graph scopes (subgraphs
 * see enclosing graphs), nodes are put in topological order if the file is not, and every
 * structural fault — a name nothing defines, a value defined twice, a cycle, a tensor whose data
 * does not fit its shape — is reported with the node or tensor it concerns.
 */
import { badInput, firstLine, isMobilizeError } from '../../errors.js';
import type { Attribute } from '../../ir/attributes.js';
import { byteLength, type DType, dtypeFromCode, lanes } from '../../ir/dtype.js';
import { Graph, Model, type ModelFunction, type Node, type Value } from '../../ir/graph.js';
import { type Metadata, type SparseTensor, shapeSize, Tensor } from '../../ir/tensor.js';
import type { Dim, ValueType } from '../../ir/types.js';
import { type Int64, int64ToNumber, onnx, readerFor } from './schema.js';

/** Supplies the bytes of an external-data tensor. `location` has already been checked to stay inside the model's folder. */
export type ExternalDataResolver = (location: string, offset: number, length: number | undefined, tensor: string) => Uint8Array;

export interface ReadOptions {
  /** File name used in messages. */
  source?: string;
  /** Needed when the model keeps weights in external files. */
  externalData?: ExternalDataResolver;
}

type P<T> = T | null | undefined;

const decoder = new TextDecoder('utf-8', { fatal: true });

export function decodeModelProto(bytes: Uint8Array, source = 'model'): onnx.ModelProto {
  try {
    return onnx.ModelProto.decode(readerFor(bytes));
  } catch (e) {
    throw badInput(`${source}: not a readable ONNX file (${firstLine(e)}); the file may be truncated or not a model`, e);
  }
}

/** Reads an ONNX model. Throws a MobilizeError (exit code 2) naming the fault for bad input. */
export function readOnnx(bytes: Uint8Array, options: ReadOptions = {}): Model {
  const source = options.source ?? 'model';
  const proto = decodeModelProto(bytes, source);
  try {
    return new Reader(options).model(proto);
  } catch (e) {
    if (isMobilizeError(e)) throw badInput(`${source}: ${e.message}`, e);
    throw badInput(`${source}: malformed ONNX model (${firstLine(e)})`, e);
  }
}

/** Reads one TensorProto (the ONNX test data format). */
export function readTensorProto(bytes: Uint8Array, options: ReadOptions = {}): Tensor {
  let proto: onnx.TensorProto;
  try {
    proto = onnx.TensorProto.decode(readerFor(bytes));
  } catch (e) {
    throw badInput(`${options.source ?? 'tensor'}: not a readable TensorProto (${firstLine(e)})`, e);
  }
  return tensorFromProto(proto, options);
}

/** Converts an already decoded TensorProto. */
export function tensorFromProto(proto: onnx.TensorProto.$Properties, options: ReadOptions = {}): Tensor {
  return new Reader(options).tensor(proto);
}

function metadata(entries: P<onnx.StringStringEntryProto.$Properties[]>): Metadata | undefined {
  if (!entries || entries.length === 0) return undefined;
  return entries.map((e) => [e.key ?? '', e.value ?? '']);
}

function unknowns(m: { $unknowns?: Uint8Array[] }): Uint8Array[] | undefined {
  return m.$unknowns && m.$unknowns.length > 0 ? m.$unknowns : undefined;
}

function has(m: object, field: string): boolean {
  return Object.hasOwn(m, field);
}

/** Checks that an external-data path stays inside the model's folder. */
export function checkExternalLocation(location: string, tensor: string): void {
  const parts = location.split(/[\\/]+/);
  if (location === '' || location.startsWith('/') || location.startsWith('\\') || /^[A-Za-z]:/.test(location) || parts.includes('..')) {
    throw badInput(
      `tensor "${tensor}" points its external data at "${location}", outside the model's folder; refusing to read it (external data must be a relative path without "..")`,
    );
  }
}

class Reader {
  private readonly options: ReadOptions;

  constructor(options: ReadOptions) {
    this.options = options;
  }

  model(p: onnx.ModelProto): Model {
    if (!p.graph) throw badInput('the file has no graph');
    const opsets = new Map<string, number>();
    for (const o of p.opsetImport ?? []) opsets.set(o.domain ?? '', int64ToNumber(o.version));
    const graph = this.graph(p.graph, undefined);
    const model = new Model(graph, opsets, int64ToNumber(p.irVersion));
    if (has(p, 'producerName')) model.producerName = p.producerName;
    if (has(p, 'producerVersion')) model.producerVersion = p.producerVersion;
    if (has(p, 'domain')) model.domain = p.domain;
    if (has(p, 'modelVersion')) model.modelVersion = int64ToNumber(p.modelVersion);
    if (has(p, 'docString')) model.doc = p.docString;
    model.metadata = metadata(p.metadataProps);
    model.functions = (p.functions ?? []).map((f) => this.function(f));
    model.trainingInfo = p.trainingInfo ?? [];
    model.deviceConfigurations = p.configuration ?? [];
    model.unknownFields = unknowns(p);
    return model;
  }

  private function(f: onnx.FunctionProto.$Properties): ModelFunction {
    const name = f.name ?? '';
    const body = new Graph(name);
    const scope = new Scope(undefined);
    for (const input of f.input ?? []) scope.define(body.addInput(input), `function ${name}`);
    const valueInfo = new Map((f.valueInfo ?? []).map((vi) => [vi.name ?? '', vi]));
    this.nodes(body, f.node ?? [], scope);
    for (const out of f.output ?? []) body.outputs.push(scope.lookup(out, `output of function ${name}`));
    for (const [n, vi] of valueInfo) {
      const v = scope.find(n);
      if (v) this.applyValueInfo(v, vi);
    }
    const fn: ModelFunction = {
      name,
      domain: f.domain ?? '',
      body,
      attributeNames: f.attribute ?? [],
      attributeDefaults: (f.attributeProto ?? []).map((a) => [a.name ?? '', this.attribute(a, body, scope)]),
      opsetImports: new Map((f.opsetImport ?? []).map((o) => [o.domain ?? '', int64ToNumber(o.version)])),
    };
    if (has(f, 'overload')) fn.overload = f.overload ?? '';
    if (has(f, 'docString')) fn.doc = f.docString ?? '';
    fn.metadata = metadata(f.metadataProps);
    return fn;
  }

  private graph(p: onnx.GraphProto.$Properties, parent: { graph: Graph; scope: Scope } | undefined): Graph {
    const g = new Graph(p.name ?? '', parent?.graph);
    const scope = new Scope(parent?.scope);
    const where = parent ? `subgraph "${g.name}"` : 'graph';
    if (has(p, 'docString')) g.doc = p.docString ?? '';
    g.metadata = metadata(p.metadataProps);
    g.unknownFields = unknowns(p);
    for (const vi of p.input ?? []) {
      const v = g.createValue(vi.name ?? '', undefined, true);
      this.applyValueInfo(v, vi);
      scope.define(v, `input of ${where}`);
      g.inputs.push(v);
    }
    for (const t of p.initializer ?? []) {
      const name = t.name ?? '';
      const tensor = this.tensor(t);
      let v = scope.local(name);
      if (v?.initializer || v?.sparseInitializer) throw badInput(`initializer "${name}" is defined twice`);
      if (!v) {
        v = g.createValue(name, { kind: 'tensor', dtype: tensor.dtype, shape: [...tensor.dims] }, true);
        scope.define(v, `initializer of ${where}`);
      }
      v.initializer = tensor;
      g.initializers.push(v);
    }
    for (const s of p.sparseInitializer ?? []) {
      const sparse = this.sparse(s);
      const name = s.values?.name ?? '';
      let v = scope.local(name);
      if (v?.initializer || v?.sparseInitializer) throw badInput(`initializer "${name}" is defined twice`);
      if (!v) {
        v = g.createValue(name, { kind: 'tensor', dtype: sparse.values.dtype, shape: [...sparse.dims] }, true);
        scope.define(v, `sparse initializer of ${where}`);
      }
      v.sparseInitializer = sparse;
      g.initializers.push(v);
    }
    this.nodes(g, p.node ?? [], scope);
    for (const vi of p.valueInfo ?? []) {
      const v = scope.local(vi.name ?? '');
      if (v) this.applyValueInfo(v, vi);
    }
    for (const vi of p.output ?? []) {
      const v = scope.lookup(vi.name ?? '', `output of ${where}`);
      this.applyValueInfo(v, vi);
      g.outputs.push(v);
    }
    if (p.quantizationAnnotation && p.quantizationAnnotation.length > 0) {
      g.quantizationAnnotations = p.quantizationAnnotation.map((a) => ({
        tensorName: a.tensorName ?? '',
        entries: metadata(a.quantParameterTensorNames) ?? [],
      }));
    }
    const cycle = g.topoSort();
    if (cycle) {
      throw badInput(`the ${where} has a cycle through ${cycle.map((n) => n.describe()).join(' → ')}; a model must be acyclic`);
    }
    return g;
  }

  /** Creates nodes in two passes: outputs first (so forward references resolve), then inputs and attributes. */
  private nodes(g: Graph, protos: onnx.NodeProto.$Properties[], scope: Scope): void {
    const made: Array<[Node, onnx.NodeProto.$Properties]> = [];
    for (const np of protos) {
      const node = g.addNode(np.opType ?? '', [], [], { domain: np.domain ?? '', name: np.name ?? '' });
      if (!node.opType) throw badInput(`node "${node.name}" has no op_type`);
      for (const out of np.output ?? []) {
        if (out === '') {
          node.outputs.push(null);
          continue;
        }
        const existing = scope.local(out);
        if (existing) {
          const by = existing.producer ? existing.producer.describe() : 'a graph input or initializer';
          throw badInput(
            `value "${out}" is produced by ${node.describe()} but already defined by ${by}; each value must have one producer`,
          );
        }
        const v = g.createValue(out, undefined, true);
        v.producer = node;
        node.outputs.push(v);
        scope.define(v, node.describe());
      }
      if (has(np, 'docString')) node.doc = np.docString ?? '';
      if (has(np, 'overload')) node.overload = np.overload ?? '';
      node.metadata = metadata(np.metadataProps);
      if (np.deviceConfigurations && np.deviceConfigurations.length > 0) node.deviceConfigurations = np.deviceConfigurations;
      node.unknownFields = unknowns(np as { $unknowns?: Uint8Array[] });
      made.push([node, np]);
    }
    for (const [node, np] of made) {
      for (const a of np.attribute ?? []) {
        const name = a.name ?? '';
        if (node.attrs.has(name)) throw badInput(`${node.describe()} has attribute "${name}" twice`);
        node.attrs.set(name, this.attribute(a, g, scope));
      }
      for (const input of np.input ?? []) {
        node.addInput(input === '' ? null : scope.lookup(input, `input of ${node.describe()}`));
      }
    }
  }

  private applyValueInfo(v: Value, vi: onnx.ValueInfoProto.$Properties): void {
    if (vi.type) v.type = this.type(vi.type);
    if (has(vi, 'docString')) v.doc = vi.docString ?? '';
    const md = metadata(vi.metadataProps);
    if (md) v.metadata = md;
    const u = unknowns(vi);
    if (u) v.unknownFields = u;
  }

  type(t: onnx.TypeProto.$Properties): ValueType | undefined {
    let out: ValueType | undefined;
    if (t.tensorType || t.sparseTensorType) {
      const tt = (t.tensorType ?? t.sparseTensorType) as onnx.TypeProto.Tensor.$Properties;
      out = { kind: t.tensorType ? 'tensor' : 'sparse_tensor', dtype: this.dtypeOrUndefined(tt.elemType) };
      if (tt.shape) {
        const dims = tt.shape.dim ?? [];
        out.shape = dims.map((d): Dim => {
          if (has(d, 'dimValue')) return int64ToNumber(d.dimValue);
          if (has(d, 'dimParam')) return d.dimParam ?? '';
          return null;
        });
        if (dims.some((d) => has(d, 'denotation')))
          out.dimDenotations = dims.map((d) => (has(d, 'denotation') ? (d.denotation ?? '') : undefined));
      }
    } else if (t.sequenceType) {
      out = { kind: 'sequence', elem: t.sequenceType.elemType ? this.type(t.sequenceType.elemType) : undefined };
    } else if (t.mapType) {
      out = {
        kind: 'map',
        key: this.dtypeOrUndefined(t.mapType.keyType),
        value: t.mapType.valueType ? this.type(t.mapType.valueType) : undefined,
      };
    } else if (t.optionalType) {
      out = { kind: 'optional', elem: t.optionalType.elemType ? this.type(t.optionalType.elemType) : undefined };
    } else if (t.opaqueType) {
      out = { kind: 'opaque', domain: t.opaqueType.domain ?? '', name: t.opaqueType.name ?? '' };
    }
    if (out && has(t, 'denotation')) out.denotation = t.denotation ?? '';
    return out;
  }

  private dtypeOrUndefined(code: P<number>): DType | undefined {
    if (!code) return undefined;
    const d = dtypeFromCode(code);
    if (!d) throw badInput(`unknown element type code ${code}`);
    return d;
  }

  attribute(a: onnx.AttributeProto.$Properties, g: Graph, scope: Scope): Attribute {
    const name = a.name ?? '';
    const type = a.type ? a.type : guessAttributeType(a);
    const A = onnx.AttributeProto.AttributeType;
    let out: Attribute;
    const graphOf = (gp: onnx.GraphProto.$Properties): Graph => {
      const sub = this.graph(gp, { graph: g, scope });
      return sub;
    };
    switch (type) {
      case A.FLOAT:
        out = { type: 'float', value: a.f ?? 0 };
        break;
      case A.INT:
        out = { type: 'int', value: int64ToNumber(a.i) };
        break;
      case A.STRING: {
        const bytes = a.s ?? new Uint8Array(0);
        const text = decodeUtf8(bytes);
        out = text === undefined ? { type: 'string', value: latin1(bytes), raw: bytes } : { type: 'string', value: text };
        break;
      }
      case A.TENSOR:
        if (!a.t) throw badInput(`attribute "${name}" is a tensor attribute without a tensor`);
        out = { type: 'tensor', value: this.tensor(a.t) };
        break;
      case A.GRAPH:
        if (!a.g) throw badInput(`attribute "${name}" is a graph attribute without a graph`);
        out = { type: 'graph', value: graphOf(a.g) };
        break;
      case A.SPARSE_TENSOR:
        if (!a.sparseTensor) throw badInput(`attribute "${name}" is a sparse tensor attribute without a tensor`);
        out = { type: 'sparse_tensor', value: this.sparse(a.sparseTensor) };
        break;
      case A.TYPE_PROTO:
        out = { type: 'type_proto', value: (a.tp && this.type(a.tp)) ?? { kind: 'tensor', dtype: undefined } };
        break;
      case A.FLOATS:
        out = { type: 'floats', value: [...(a.floats ?? [])] };
        break;
      case A.INTS:
        out = { type: 'ints', value: (a.ints ?? []).map((i) => int64ToNumber(i)) };
        break;
      case A.STRINGS: {
        const raws = a.strings ?? [];
        const texts = raws.map(decodeUtf8);
        out = texts.every((t) => t !== undefined)
          ? { type: 'strings', value: texts as string[] }
          : { type: 'strings', value: raws.map(latin1), raw: raws };
        break;
      }
      case A.TENSORS:
        out = { type: 'tensors', value: (a.tensors ?? []).map((t) => this.tensor(t)) };
        break;
      case A.GRAPHS:
        out = { type: 'graphs', value: (a.graphs ?? []).map(graphOf) };
        break;
      case A.SPARSE_TENSORS:
        out = { type: 'sparse_tensors', value: (a.sparseTensors ?? []).map((s) => this.sparse(s)) };
        break;
      case A.TYPE_PROTOS:
        out = {
          type: 'type_protos',
          value: (a.typeProtos ?? []).map((t) => this.type(t) ?? { kind: 'tensor', dtype: undefined }),
        };
        break;
      default:
        if (a.refAttrName) {
          out = { type: 'undefined', value: undefined };
          break;
        }
        throw badInput(`attribute "${name}" has unknown type ${type}`);
    }
    if (a.refAttrName) out.refAttrName = a.refAttrName;
    if (has(a, 'docString')) out.doc = a.docString ?? '';
    const u = unknowns(a);
    if (u) out.unknownFields = u;
    return out;
  }

  tensor(t: onnx.TensorProto.$Properties): Tensor {
    const name = t.name ?? '';
    const label = name ? `tensor "${name}"` : 'a tensor';
    const dtype = dtypeFromCode(t.dataType ?? 0);
    if (!dtype) throw badInput(`${label} has unknown data type ${t.dataType ?? 0}`);
    const dims = (t.dims ?? []).map((d) => int64ToNumber(d));
    for (const d of dims) {
      if (!Number.isSafeInteger(d) || d < 0) throw badInput(`${label} has invalid dimension ${d}`);
    }
    if (t.segment) throw badInput(`${label} is stored in segments, which mobilize does not read`);
    const count = shapeSize(dims);
    let tensor: Tensor;
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      tensor = this.externalTensor(t, dtype, dims, label);
    } else if (dtype === 'string') {
      const strs = t.stringData ?? [];
      if (strs.length !== count) throw badInput(`${label} holds ${strs.length} strings but its shape [${dims}] needs ${count}`);
      tensor = Tensor.fromStrings(dims, strs);
    } else if (has(t, 'rawData')) {
      tensor = Tensor.fromBytes(dtype, dims, t.rawData ?? new Uint8Array(0));
    } else {
      tensor = typedFieldTensor(t, dtype, dims, count, label);
    }
    if (name) tensor.name = name;
    if (has(t, 'docString')) tensor.doc = t.docString ?? '';
    tensor.metadata = metadata(t.metadataProps);
    tensor.unknownFields = unknowns(t);
    return tensor;
  }

  private externalTensor(t: onnx.TensorProto.$Properties, dtype: DType, dims: number[], label: string): Tensor {
    const info = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = info.get('location');
    if (location === undefined) throw badInput(`${label} is marked external but names no location`);
    checkExternalLocation(location, t.name ?? '');
    const offset = Number(info.get('offset') ?? '0');
    const length = info.has('length') ? Number(info.get('length')) : undefined;
    if (!Number.isSafeInteger(offset) || offset < 0 || (length !== undefined && (!Number.isSafeInteger(length) || length < 0))) {
      throw badInput(`${label} has an invalid external data offset or length`);
    }
    const want = byteLength(dtype, shapeSize(dims) * lanes(dtype));
    if (length !== undefined && length !== want) {
      throw badInput(`${label}: external data length ${length} does not match ${dtype}[${dims}] (${want} bytes)`);
    }
    if (!this.options.externalData) {
      throw badInput(`${label} keeps its data in external file "${location}"; load the model from its file so the data can be found`);
    }
    const bytes = this.options.externalData(location, offset, length ?? want, t.name ?? '');
    const tensor = Tensor.fromBytes(dtype, dims, bytes);
    return tensor;
  }

  sparse(s: onnx.SparseTensorProto.$Properties): SparseTensor {
    if (!s.values || !s.indices) throw badInput('a sparse tensor lacks its values or indices');
    return {
      values: this.tensor(s.values),
      indices: this.tensor(s.indices),
      dims: (s.dims ?? []).map((d) => int64ToNumber(d)),
    };
  }
}

/** A tensor stored in the typed repeated fields (float_data, int32_data, …) instead of raw_data. */
function typedFieldTensor(t: onnx.TensorProto.$Properties, dtype: DType, dims: number[], count: number, label: string): Tensor {
  const n = count * lanes(dtype);
  const check = (have: number, want: number): void => {
    if (have !== want) throw badInput(`${label} holds ${have} values but ${dtype}[${dims.join(',')}] needs ${want}`);
  };
  switch (dtype) {
    case 'float32':
    case 'complex64': {
      const src = t.floatData ?? [];
      if (n === 0 && src.length === 0) return Tensor.zeros(dtype, dims);
      check(src.length, n);
      return Tensor.from(dtype, dims, Float32Array.from(src));
    }
    case 'float64':
    case 'complex128': {
      const src = t.doubleData ?? [];
      if (n === 0 && src.length === 0) return Tensor.zeros(dtype, dims);
      check(src.length, n);
      return Tensor.from(dtype, dims, Float64Array.from(src));
    }
    case 'int64': {
      const src = t.int64Data ?? [];
      if (n === 0 && src.length === 0) return Tensor.zeros(dtype, dims);
      check(src.length, n);
      return Tensor.from(
        dtype,
        dims,
        BigInt64Array.from(src, (v) => longToBigInt(v, true)),
      );
    }
    case 'uint32':
    case 'uint64': {
      const src = t.uint64Data ?? [];
      if (n === 0 && src.length === 0) return Tensor.zeros(dtype, dims);
      check(src.length, n);
      if (dtype === 'uint32')
        return Tensor.from(
          dtype,
          dims,
          Uint32Array.from(src, (v) => int64ToNumber(v) >>> 0),
        );
      return Tensor.from(
        dtype,
        dims,
        BigUint64Array.from(src, (v) => longToBigInt(v, false)),
      );
    }
    default: {
      // int32_data carries every narrower type: one element per entry, or two 4-bit elements.
      const src = t.int32Data ?? [];
      const packed = dtype === 'int4' || dtype === 'uint4' || dtype === 'float4e2m1';
      const entries = packed ? byteLength(dtype, n) : n;
      if (entries === 0 && src.length === 0) return Tensor.zeros(dtype, dims);
      check(src.length, entries);
      if (packed)
        return Tensor.from(
          dtype,
          dims,
          Uint8Array.from(src, (v) => v & 0xff),
        );
      return Tensor.from(dtype, dims, src);
    }
  }
}

function longToBigInt(v: Int64, signed: boolean): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(v);
  const big = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return signed ? BigInt.asIntN(64, big) : big;
}

function guessAttributeType(a: onnx.AttributeProto.$Properties): number {
  // IR version 1 files carry no type field; pick the one value field that is set.
  const A = onnx.AttributeProto.AttributeType;
  if (has(a, 'f')) return A.FLOAT;
  if (has(a, 'i')) return A.INT;
  if (has(a, 's')) return A.STRING;
  if (a.t) return A.TENSOR;
  if (a.g) return A.GRAPH;
  if (a.floats?.length) return A.FLOATS;
  if (a.ints?.length) return A.INTS;
  if (a.strings?.length) return A.STRINGS;
  if (a.tensors?.length) return A.TENSORS;
  if (a.graphs?.length) return A.GRAPHS;
  return A.UNDEFINED;
}

function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return decoder.decode(bytes);
  } catch {
    return undefined;
  }
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** Name → value lookup through nested graph scopes. */
class Scope {
  private readonly values = new Map<string, Value>();
  private readonly parent: Scope | undefined;

  constructor(parent: Scope | undefined) {
    this.parent = parent;
  }

  define(v: Value, what: string): void {
    if (v.name === '') throw badInput(`${what} has an empty name`);
    if (this.values.has(v.name)) throw badInput(`value "${v.name}" is defined twice (again as ${what})`);
    this.values.set(v.name, v);
  }

  local(name: string): Value | undefined {
    return this.values.get(name);
  }

  find(name: string): Value | undefined {
    return this.values.get(name) ?? this.parent?.find(name);
  }

  lookup(name: string, what: string): Value {
    const v = this.find(name);
    if (!v) throw badInput(`"${name}" (${what}) is not defined by any node, input or initializer`);
    return v;
  }
}
