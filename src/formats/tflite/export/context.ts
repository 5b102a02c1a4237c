/**
 * The lowering's state: which TFLite tensors stand for each IR value, and the lazy conversions
 * between them. A value may be wanted in another layout (TRANSPOSE, or RESHAPE when only 1-sized
 * axes move) or as the other kind — float32 or int8 — (QUANTIZE / DEQUANTIZE); each conversion
 * is made once, the first time an op asks for it, so only what some op really needs is emitted.
 */
import { badInput } from '../../../errors.js';
import type { Node, Value } from '../../../ir/graph.js';
import type { Tensor } from '../../../ir/tensor.js';
import { isStaticShape, isTensorType } from '../../../ir/types.js';
import { transposeTensor } from '../../../ops/shape.js';
import { Builtin, TensorType, type TensorTypeValue, type TfliteOptions, type TfliteQuantization } from '../model.js';
import type { TfliteBuilder } from './builder.js';
import { conversionPerm, identity, isIdentityPerm, permuteFloats, permuteShape, sameDataOrder, samePerm } from './layout.js';
import { type ActivationParams, paramsFromData, quantization } from './quant.js';

export type Precision = 'fp32' | 'fp16' | 'dynamic' | 'int8';
export type Kind = 'float' | 'int8';

/** One TFLite tensor standing for an IR value. */
export interface Rep {
  tensor: number;
  perm: readonly number[];
  kind: Kind;
  /** int8 reps: the tensor's parameters. */
  params?: ActivationParams;
}

export interface LowerSettings {
  precision: Precision;
  io: 'nchw' | 'nhwc';
  ioType: 'float' | 'int8' | 'uint8';
  /** Inputs/outputs whose 8-bit type the model fixes (a QDQ model with quantized I/O), by name. */
  ioOverrides?: ReadonlyMap<string, 'int8' | 'uint8'>;
}

export class LowerContext {
  readonly b: TfliteBuilder;
  readonly settings: LowerSettings;
  /** int8 precision: activation parameters by value (from QDQ nodes or calibration). */
  readonly activationParams: ReadonlyMap<Value, ActivationParams>;
  readonly notes: string[] = [];
  /** Nodes already lowered as part of another (a fused activation). */
  readonly fused = new Set<Node>();
  /** Float ops in an int8 model, by op type (reported). */
  readonly floatOps = new Map<string, number>();
  /**
   * Values whose last axis holds another order than ONNX's: tflite column j is ONNX column
   * order[j] (a Flatten of an NHWC tensor read by a FULLY_CONNECTED, which permutes its weights).
   */
  readonly columnOrder = new Map<Value, Int32Array>();
  /** The model's opset is below 13: Softmax coerces its input to 2-D around `axis`. */
  legacySoftmax = false;
  private readonly reps = new Map<Value, Rep[]>();
  /** paramsOf's answer for constants (a scan of the whole constant), computed once. */
  private readonly constParams = new Map<Value, ActivationParams>();

  constructor(b: TfliteBuilder, settings: LowerSettings, activationParams: ReadonlyMap<Value, ActivationParams> = new Map()) {
    this.b = b;
    this.settings = settings;
    this.activationParams = activationParams;
  }

  get int8(): boolean {
    return this.settings.precision === 'int8';
  }

  // ------------------------------------------------------------------ shapes

  shape(v: Value): number[] {
    const t = v.type;
    if (v.initializer) return [...v.initializer.dims];
    if (!isTensorType(t) || !isStaticShape(t.shape)) {
      throw badInput(`tensor "${v.name}" has no static shape; TFLite needs static shapes: fix the inputs' dims with --input-shape`);
    }
    return t.shape;
  }

  rank(v: Value): number {
    return this.shape(v).length;
  }

  isConstant(v: Value): boolean {
    return v.initializer !== undefined && !v.isGraphInput;
  }

  constant(v: Value, what: string, node: Node): Tensor {
    if (!this.isConstant(v) || !v.initializer) throw badInput(`cannot export ${node.describe()} to TFLite: its ${what} must be a constant`);
    return v.initializer;
  }

  // ------------------------------------------------------------------ reps

  define(v: Value, rep: Rep): void {
    const list = this.reps.get(v) ?? [];
    list.push(rep);
    this.reps.set(v, list);
  }

  /** Aliases `to` to every tensor of `from` (Identity, Dropout, a no-op Cast). */
  alias(from: Value, to: Value): void {
    for (const r of this.repsOf(from)) this.define(to, r);
  }

  repsOf(v: Value): Rep[] {
    const list = this.reps.get(v);
    if (!list || list.length === 0) throw new Error(`tflite export: "${v.name}" used before it was lowered`);
    return list;
  }

  /** The layout of the value's first tensor (identity for constants). */
  layout(v: Value): readonly number[] {
    if (this.isConstant(v)) return identity(this.rank(v));
    return this.repsOf(v)[0].perm;
  }

  /** Parameters an int8 tensor of `v` has or would have; undefined when `v` cannot be int8. */
  paramsOf(v: Value): ActivationParams | undefined {
    if (this.isConstant(v)) {
      if (!v.initializer) return undefined;
      let p = this.constParams.get(v);
      if (!p) {
        p = paramsFromData(v.initializer.toFloat32());
        this.constParams.set(v, p);
      }
      return p;
    }
    const rep = this.reps.get(v)?.find((r) => r.kind === 'int8');
    return rep?.params ?? this.activationParams.get(v);
  }

  /** True when every value can be read as int8 (int8 precision only). */
  canInt8(...values: Value[]): boolean {
    return this.int8 && values.every((v) => this.paramsOf(v) !== undefined);
  }

  /** Creates the tensor of a node's output value in layout `perm` and kind, and records it. */
  produce(v: Value, perm: readonly number[], kind: Kind, params?: ActivationParams): number {
    const shape = permuteShape(this.shape(v), perm);
    const p = kind === 'int8' ? (params ?? this.activationParams.get(v)) : undefined;
    if (kind === 'int8' && !p) throw new Error(`tflite export: no int8 parameters for "${v.name}"`);
    const tensor = this.b.tensor({
      name: v.name,
      shape,
      type: kind === 'int8' ? TensorType.INT8 : TensorType.FLOAT32,
      quantization: p ? quantization(p) : undefined,
    });
    this.define(v, { tensor, perm, kind, params: p });
    return tensor;
  }

  /** An intermediate tensor no IR value stands for. */
  temp(name: string, shape: readonly number[], kind: Kind, params?: ActivationParams): number {
    return this.b.tensor({
      name,
      shape,
      type: kind === 'int8' ? TensorType.INT8 : TensorType.FLOAT32,
      quantization: params ? quantization(params) : undefined,
    });
  }

  op(code: number, inputs: number[], outputs: number[], options?: TfliteOptions, version = 1): void {
    this.b.op(code, inputs, outputs, options, version);
  }

  /**
   * `v` as a tensor in layout `perm` and `kind` (int8 reads take `params` when given, else the
   * value's own). Constants become constant tensors laid out as asked.
   */
  read(v: Value, perm: readonly number[], kind: Kind = 'float', params?: ActivationParams): number {
    if (this.isConstant(v)) return this.constantOperand(v, this.rank(v), perm, kind, params);
    const reps = this.repsOf(v);
    const want = kind === 'int8' ? (params ?? this.paramsOf(v)) : undefined;
    if (kind === 'int8' && !want) throw new Error(`tflite export: "${v.name}" has no int8 parameters`);
    const matches = (r: Rep) => samePerm(r.perm, perm) && r.kind === kind && (kind === 'float' || sameParams(r.params, want));
    const exact = reps.find(matches);
    if (exact) return exact.tensor;
    // Same layout, other kind: one QUANTIZE/DEQUANTIZE.
    const sameLayout = reps.find((r) => samePerm(r.perm, perm) && r.kind === kind) ?? reps.find((r) => samePerm(r.perm, perm));
    if (sameLayout) return this.convertKind(v, sameLayout, kind, want);
    // Change the layout first (on the int8 tensor when there is one: a quarter of the bytes).
    const source = reps.find((r) => r.kind === kind) ?? reps.find((r) => r.kind === 'int8') ?? reps[0];
    const moved = this.convertLayout(v, source, perm);
    return moved.kind === kind && (kind === 'float' || sameParams(moved.params, want))
      ? moved.tensor
      : this.convertKind(v, moved, kind, want);
  }

  /**
   * `v` as an operand of rank `rank` (leading 1s added, as ONNX broadcasting aligns trailing
   * dims) in layout `perm`: binary ops, PRELU slopes, LayerNorm's scale.
   */
  operand(v: Value, rank: number, perm: readonly number[], kind: Kind = 'float', params?: ActivationParams): number {
    if (this.isConstant(v)) return this.constantOperand(v, rank, perm, kind, params);
    const own = this.shape(v);
    if (own.length === rank) return this.read(v, perm, kind, params);
    const expanded = [...new Array<number>(rank - own.length).fill(1), ...own];
    const src = this.read(v, identity(own.length), kind, params);
    const q = this.quantizationOf(src);
    const p = q ? { scale: q.scale[0], zeroPoint: q.zeroPoint[0] } : undefined;
    const name = `${v.name}/rank${rank}`;
    if (sameDataOrder(expanded, identity(rank), perm)) return this.reshape(src, permuteShape(expanded, perm), name, kind, p);
    return this.transpose(this.reshape(src, expanded, name, kind, p), expanded, perm, `${name}/t`, kind, p);
  }

  private constantOperand(v: Value, rank: number, perm: readonly number[], kind: Kind, params?: ActivationParams): number {
    return this.tensorOperand(v.name, v.initializer as Tensor, rank, perm, kind, params);
  }

  /** A constant tensor (ONNX layout) as an operand of rank `rank` in layout `perm`. */
  tensorOperand(name: string, t: Tensor, rank: number, perm: readonly number[], kind: Kind = 'float', params?: ActivationParams): number {
    const dims = [...new Array<number>(Math.max(0, rank - t.dims.length)).fill(1), ...t.dims];
    const shape = permuteShape(dims, perm);
    const tag = `${name}${isIdentityPerm(perm) ? '' : `/${layoutTag(perm)}`}`;
    if (t.dtype === 'float32' && kind === 'float') return this.floatConst(tag, permuteFloats(t.toFloat32(), dims, perm), shape);
    const laid = transposeTensor(t.reshape(dims), perm);
    if (t.dtype === 'int64' || t.dtype === 'int32') {
      return this.b.constant({ name: tag, shape, type: TensorType.INT32 }, int32Bytes(laid.toNumbers()));
    }
    if (t.dtype === 'bool') return this.b.constant({ name: tag, shape, type: TensorType.BOOL }, new Uint8Array(laid.toNumbers()));
    const data = laid.toFloat32();
    if (kind === 'int8') {
      const p = params ?? paramsFromData(data);
      const q = new Int8Array(data.length);
      for (let i = 0; i < data.length; i++) q[i] = Math.max(-128, Math.min(127, Math.round(data[i] / p.scale) + p.zeroPoint));
      return this.b.constant({ name: tag, shape, type: TensorType.INT8, quantization: quantization(p) }, new Uint8Array(q.buffer));
    }
    return this.floatConst(tag, data, shape);
  }

  private convertLayout(v: Value, source: Rep, perm: readonly number[]): Rep {
    const shape = this.shape(v);
    const name = `${v.name}/${layoutTag(perm)}`;
    const tensor = sameDataOrder(shape, source.perm, perm)
      ? this.reshape(source.tensor, permuteShape(shape, perm), name, source.kind, source.params)
      : this.transpose(
          source.tensor,
          permuteShape(shape, source.perm),
          conversionPerm(source.perm, perm),
          name,
          source.kind,
          source.params,
        );
    const rep: Rep = { tensor, perm, kind: source.kind, params: source.params };
    this.define(v, rep);
    return rep;
  }

  private convertKind(v: Value, source: Rep, kind: Kind, params: ActivationParams | undefined): number {
    const shape = this.b.sub.tensors[source.tensor].shape;
    const tag = kind === 'int8' ? 'int8' : 'float';
    const tensor = this.temp(`${v.name}/${tag}`, shape, kind, params);
    this.op(kind === 'int8' ? Builtin.QUANTIZE : Builtin.DEQUANTIZE, [source.tensor], [tensor]);
    this.define(v, { tensor, perm: source.perm, kind, params });
    return tensor;
  }

  /** RESHAPE of a tensor (same data, other dims). */
  reshape(src: number, shape: readonly number[], name: string, kind: Kind, params?: ActivationParams): number {
    const out = this.temp(name, shape, kind, params);
    const shapeTensor = this.int32Const(`${name}/shape`, [...shape]);
    this.op(Builtin.RESHAPE, [src, shapeTensor], [out], { type: 'ReshapeOptions', fields: { new_shape: [...shape] } });
    return out;
  }

  /** TRANSPOSE of a tensor whose dims are `srcShape`. */
  transpose(
    src: number,
    srcShape: readonly number[],
    perm: readonly number[],
    name: string,
    kind: Kind,
    params?: ActivationParams,
  ): number {
    const out = this.temp(name, permuteShape(srcShape, perm), kind, params);
    this.op(Builtin.TRANSPOSE, [src, this.int32Const(`${name}/perm`, [...perm])], [out], { type: 'TransposeOptions', fields: {} });
    return out;
  }

  int32Const(name: string, values: readonly number[], shape: readonly number[] = [values.length]): number {
    return this.b.constant({ name, shape, type: TensorType.INT32 }, int32Bytes(values));
  }

  floatConst(name: string, values: Float32Array, shape: readonly number[]): number {
    return this.b.constant({ name, shape, type: TensorType.FLOAT32 }, new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }

  /** A scalar (shape [1]) operand for elementwise ops, float or int8 with its own grid. */
  scalar(name: string, x: number, kind: Kind): number {
    if (kind === 'float') return this.floatConst(name, Float32Array.of(x), [1]);
    const p = paramsFromData(Float32Array.of(x));
    const q = Int8Array.of(Math.max(-128, Math.min(127, Math.round(x / p.scale) + p.zeroPoint)));
    return this.b.constant({ name, shape: [1], type: TensorType.INT8, quantization: quantization(p) }, new Uint8Array(q.buffer));
  }

  /** An int8 constant holding the raw value `q` on the grid `params`. */
  scalarInt8Raw(name: string, q: number, params: ActivationParams | undefined): number {
    if (!params) throw new Error('tflite export: int8 constant without parameters');
    return this.b.constant(
      { name, shape: [], type: TensorType.INT8, quantization: quantization(params) },
      new Uint8Array(Int8Array.of(q).buffer),
    );
  }

  quantizationOf(tensor: number): TfliteQuantization | undefined {
    return this.b.sub.tensors[tensor].quantization;
  }

  typeOf(tensor: number): TensorTypeValue {
    return this.b.sub.tensors[tensor].type;
  }

  /** Counts a float op in an int8 model, for the report. */
  floatOp(node: Node): void {
    if (this.int8) this.floatOps.set(node.opType, (this.floatOps.get(node.opType) ?? 0) + 1);
  }
}

function layoutTag(perm: readonly number[]): string {
  if (isIdentityPerm(perm)) return 'nchw';
  if (perm.length === 4 && samePerm(perm, [0, 2, 3, 1])) return 'nhwc';
  return `perm${perm.join('')}`;
}

function sameParams(a: ActivationParams | undefined, b: ActivationParams | undefined): boolean {
  return a !== undefined && b !== undefined && Math.fround(a.scale) === Math.fround(b.scale) && a.zeroPoint === b.zeroPoint;
}

function int32Bytes(values: readonly number[]): Uint8Array {
  const a = Int32Array.from(values, (x) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, x)));
  return new Uint8Array(a.buffer);
}
