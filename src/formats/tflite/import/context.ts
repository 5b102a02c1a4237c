/**
 * The state of one TFLite → IR import: which IR value holds each TFLite tensor, and the helpers
 * every op lowering uses. Lowerings work on real numbers: `input(i)` gives an op's i-th input as
 * a float value (DequantizeLinear of a quantized tensor, fp16 constants decoded), and
 * `output(i, v)` stores a float result into the op's i-th output tensor (QuantizeLinear when
 * that tensor is quantized). The graph is thus QDQ wherever the file is quantized, with the same
 * scales and zero points, and the rest of mobilize (optimizer, quantizer, exporters) reads it as
 * any QDQ model. Tensors keep TFLite's NHWC layout; spatial ops convert at their own boundary
 * (`nchw` / `nhwc`), and a value that just came back from NCHW is not transposed there again:
 * element-wise ops, pads, concatenations and Q/DQ pairs between two spatial ops run on the NCHW
 * twins, and the NHWC Transposes nobody reads are dropped at the end (MediaPipe's face detector
 * imports with 5 Transposes, all at its input and output heads).
 */
import { badInput } from '../../../errors.js';
import type { AttrInput } from '../../../ir/attributes.js';
import type { ModelBuilder } from '../../../ir/builder.js';
import type { DType } from '../../../ir/dtype.js';
import type { Value } from '../../../ir/graph.js';
import { Tensor } from '../../../ir/tensor.js';
import {
  Activation,
  builtinName,
  TensorType,
  type TfliteModel,
  type TfliteOperator,
  type TfliteSubgraph,
  type TfliteTensor,
} from '../model.js';
import { TENSOR_TYPE_BYTES } from '../validate.js';
import { DTYPES, halfToFloat32, intValues, permuteBytes } from './constants.js';
import { densify } from './densify.js';

const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

export class ImportContext {
  /** The op being lowered (set by the driver). */
  current!: TfliteOperator;
  opName = '';
  private readonly stored = new Map<number, Value>();
  private readonly floats = new Map<number, Value>();
  private readonly constants = new Map<number, Tensor | null>();
  /** Tensors that are another tensor under a new name (DEQUANTIZE/DENSIFY of a constant). */
  private readonly aliases = new Map<number, number>();
  private readonly nchwOf = new Map<Value, Value>();
  private readonly nchwCache = new Map<Value, Value>();
  private readonly scalars = new Map<string, Value>();
  private readonly nodeNames = new Set<string>();

  constructor(
    readonly b: ModelBuilder,
    readonly model: TfliteModel,
    readonly sub: TfliteSubgraph,
    readonly source: string,
  ) {}

  fail(why: string): never {
    throw badInput(`${this.source}: ${this.opName}: ${why}`);
  }

  private resolve(index: number): number {
    return this.aliases.get(index) ?? index;
  }

  tensor(index: number): TfliteTensor {
    const t = this.sub.tensors[this.resolve(index)];
    if (t === undefined) this.fail(`an input it needs is missing (tensor index ${index})`);
    return t;
  }

  /** The tensor index of the current op's i-th input (−1 when omitted or absent). */
  inputIndex(i: number): number {
    return this.current.inputs[i] ?? -1;
  }

  hasInput(i: number): boolean {
    return this.inputIndex(i) >= 0;
  }

  shapeOf(i: number): number[] {
    return this.tensor(this.inputIndex(i)).shape;
  }

  outputShape(i = 0): number[] {
    const t = this.sub.tensors[this.current.outputs[i]];
    if (t === undefined) this.fail(`output ${i} is missing`);
    return t.shape;
  }

  quantized(t: TfliteTensor): boolean {
    return (
      t.quantization !== undefined && t.quantization.scale.length > 0 && t.type !== TensorType.FLOAT32 && t.type !== TensorType.FLOAT16
    );
  }

  /** The constant payload of a tensor as an IR tensor of its stored type, or undefined. */
  constantOf(index: number): Tensor | undefined {
    const idx = this.resolve(index);
    const cached = this.constants.get(idx);
    if (cached !== undefined) return cached ?? undefined;
    const t = this.sub.tensors[idx];
    let data = this.model.buffers[t.buffer];
    if (data.length === 0) {
      this.constants.set(idx, null);
      return undefined;
    }
    const dtype = DTYPES[t.type];
    if (dtype === undefined) this.fail(`tensor "${t.name}" has element type ${t.type}, which mobilize cannot import`);
    if (t.sparsity !== undefined) data = densify(t, data, TENSOR_TYPE_BYTES[t.type] ?? 1, `${this.source}: ${this.opName}`);
    const tensor = Tensor.fromBytes(dtype, t.shape, data);
    this.constants.set(idx, tensor);
    return tensor;
  }

  /** Integer values of the i-th input, which must be a constant (shapes, axes, paddings). */
  ints(i: number, what: string): number[] {
    const c = this.constantOf(this.inputIndex(i));
    if (c === undefined) this.fail(`its ${what} must be a constant tensor`);
    return intValues(c!);
  }

  alias(output: number, input: number): void {
    this.aliases.set(output, this.resolve(input));
  }

  /** The tensor as stored (int8 when quantized); graph inputs and constants on first use. */
  storedValue(index: number): Value {
    const idx = this.resolve(index);
    const known = this.stored.get(idx);
    if (known) return known;
    const t = this.sub.tensors[idx];
    const c = this.constantOf(idx);
    if (c === undefined) this.fail(`reads tensor "${t.name}", which no earlier op produces`);
    const v = this.b.constant(this.b.graph.freshName(t.name || `tensor${idx}`), c!);
    this.stored.set(idx, v);
    return v;
  }

  setStored(index: number, v: Value): void {
    this.stored.set(index, v);
  }

  private zeroPoints(t: TfliteTensor, count: number): Tensor {
    const dtype = DTYPES[t.type]!;
    const zp = t.quantization!.zeroPoint;
    const values = Array.from({ length: count }, (_, i) => zp[i] ?? 0);
    return Tensor.from(dtype, count === 1 ? [] : [count], values);
  }

  private qparams(t: TfliteTensor, axis: number | undefined): { scale: Value; zeroPoint: Value; attrs: Record<string, AttrInput> } {
    if (t.type === TensorType.INT16)
      this.fail(`tensor "${t.name}" is int16-quantized (16x8), which needs ONNX opset 21; mobilize imports int8/uint8 models`);
    const q = t.quantization!;
    const count = q.scale.length;
    const name = t.name || 'q';
    const scale = this.b.constant(this.b.graph.freshName(`${name}_scale`), Tensor.from('float32', count === 1 ? [] : [count], q.scale));
    const zeroPoint = this.b.constant(this.b.graph.freshName(`${name}_zero_point`), this.zeroPoints(t, count));
    const attrs: Record<string, AttrInput> = count > 1 && axis !== undefined ? { axis } : {};
    return { scale, zeroPoint, attrs };
  }

  /** Per-channel axis of a tensor, mapped through `perm` when its data is being permuted. */
  private axisOf(t: TfliteTensor, perm?: readonly number[]): number {
    const raw = t.shape.length === 1 ? 0 : t.quantization!.quantizedDimension;
    return perm ? perm.indexOf(raw) : raw;
  }

  private dequantize(stored: Value, t: TfliteTensor, perm?: readonly number[]): Value {
    const { scale, zeroPoint, attrs } = this.qparams(t, this.axisOf(t, perm));
    return this.b.op('DequantizeLinear', [stored, scale, zeroPoint], attrs, { name: this.nodeName(`${t.name || 'dq'}_dequantize`) });
  }

  /** The i-th input of the op as real numbers (float32 for float and quantized tensors). */
  input(i: number): Value {
    const index = this.inputIndex(i);
    if (index < 0) this.fail(`input ${i} is missing`);
    return this.value(index);
  }

  value(index: number): Value {
    const idx = this.resolve(index);
    const known = this.floats.get(idx);
    if (known) return known;
    const t = this.sub.tensors[idx];
    let v: Value;
    if (this.quantized(t)) {
      const stored = this.storedValue(idx);
      const twin = this.nchwOf.get(stored);
      v = twin ? this.nhwc(this.dequantize(twin, t)) : this.dequantize(stored, t);
    } else if (t.type === TensorType.FLOAT16) {
      const c = this.constantOf(idx);
      v = c
        ? this.b.constant(this.b.graph.freshName(t.name || 'f16'), halfToFloat32(c.bytes, c.dims))
        : this.op('Cast', [this.storedValue(idx)], { to: 1 });
    } else v = this.storedValue(idx);
    this.floats.set(idx, v);
    return v;
  }

  /**
   * The i-th input as real numbers in another layout: constants are permuted at import (with
   * their per-channel axis), anything else gets a Transpose node.
   */
  weight(i: number, perm: readonly number[]): Value {
    const index = this.resolve(this.inputIndex(i));
    const t = this.sub.tensors[index];
    const c = this.constantOf(index);
    if (c === undefined) return this.op('Transpose', [this.value(index)], { perm: [...perm] });
    const dims = perm.map((p) => c.dims[p]);
    const width = TENSOR_TYPE_BYTES[t.type] ?? 1;
    let data = permuteBytes(c.bytes, c.dims, perm, width);
    const name = this.b.graph.freshName(t.name || 'weight');
    if (this.quantized(t)) {
      const stored = this.b.constant(name, Tensor.fromBytes(c.dtype, dims, data));
      return this.dequantize(stored, t, perm);
    }
    if (c.dtype === 'float16') return this.b.constant(name, halfToFloat32(data, dims));
    if (c.dtype !== 'float32') data = data.slice();
    return this.b.constant(name, Tensor.fromBytes(c.dtype, dims, data));
  }

  /**
   * Stores a float result into the op's i-th output tensor (quantizing it when that tensor is).
   * A float16 activation, rare, is kept in float32: the import computes in float32 throughout.
   */
  output(i: number, v: Value): void {
    const index = this.current.outputs[i];
    const t = this.sub.tensors[index];
    if (this.quantized(t)) {
      const { scale, zeroPoint, attrs } = this.qparams(t, this.axisOf(t));
      // A per-tensor quantized result of a spatial op is quantized in NCHW, so the next spatial
      // op reads DequantizeLinear(QuantizeLinear(y)) with no Transpose between (QDQ-fusable).
      const twin = t.quantization!.scale.length === 1 ? this.nchwOf.get(v) : undefined;
      const name = this.nodeName(`${t.name || 'q'}_quantize`);
      const q = twin
        ? this.nhwc(this.b.op('QuantizeLinear', [twin, scale, zeroPoint], attrs, { name }))
        : this.b.op('QuantizeLinear', [v, scale, zeroPoint], attrs, { name });
      this.name(q, t.name);
      this.stored.set(index, q);
      return;
    }
    this.name(v, t.name);
    this.stored.set(index, v);
    this.floats.set(index, v);
  }

  private name(v: Value, name: string): void {
    if (name === '' || v.initializer !== undefined || v.graph.inputs.includes(v)) return;
    if (!v.graph.hasName(name)) v.graph.renameValue(v, name);
  }

  /** A node name not used yet: the TFLite op's name, then `_1`, `_2`… for its helper nodes. */
  nodeName(base: string): string {
    let name = base;
    for (let i = 1; this.nodeNames.has(name); i++) name = `${base}_${i}`;
    this.nodeNames.add(name);
    return name;
  }

  op(opType: string, inputs: ReadonlyArray<Value | null>, attrs: Record<string, AttrInput> = {}): Value {
    return this.b.op(opType, inputs, attrs, { name: this.nodeName(this.opName) });
  }

  opMulti(opType: string, inputs: ReadonlyArray<Value | null>, attrs: Record<string, AttrInput>, outputs: number): Value[] {
    return this.b.opMulti(opType, inputs, attrs, { name: this.nodeName(this.opName), outputs });
  }

  /** A shared int64 constant (shapes, axes, pads). */
  int64(values: readonly number[], dims: number[] = [values.length]): Value {
    const key = `i64:${dims.join(',')}:${values.join(',')}`;
    let v = this.scalars.get(key);
    if (!v) {
      v = this.b.constant(
        this.b.graph.freshName('const'),
        Tensor.from(
          'int64',
          dims,
          values.map((x) => BigInt(x)),
        ),
      );
      this.scalars.set(key, v);
    }
    return v;
  }

  /** A shared float32 scalar constant. */
  float(value: number): Value {
    const key = `f32:${value}`;
    let v = this.scalars.get(key);
    if (!v) {
      v = this.b.constant(this.b.graph.freshName('const'), Tensor.from('float32', [], [value]));
      this.scalars.set(key, v);
    }
    return v;
  }

  /** NHWC → NCHW for a spatial op; reuses the NCHW value a previous op produced. */
  nchw(v: Value): Value {
    const back = this.nchwOf.get(v);
    if (back) return back;
    let t = this.nchwCache.get(v);
    if (!t) {
      t = this.op('Transpose', [v], { perm: TO_NCHW });
      this.nchwCache.set(v, t);
    }
    return t;
  }

  /**
   * The NCHW twins of `values` when each has one (it came out of a spatial op) or is a scalar
   * constant; element-wise ops between spatial ops then stay in NCHW and add no Transpose.
   */
  nchwTwins(values: readonly Value[]): Value[] | undefined {
    if (!values.some((v) => this.nchwOf.has(v))) return undefined;
    const out: Value[] = [];
    for (const v of values) {
      const twin = this.nchwOf.get(v);
      if (twin) out.push(twin);
      else if (v.initializer !== undefined && v.initializer.size === 1) out.push(v);
      else return undefined;
    }
    return out;
  }

  /** NCHW → NHWC after a spatial op, remembering the NCHW value for the next spatial op. */
  nhwc(v: Value): Value {
    const t = this.op('Transpose', [v], { perm: TO_NHWC });
    this.nchwOf.set(t, v);
    return t;
  }

  /** Applies a fused_activation_function after `v`. */
  activation(v: Value, code: number | undefined): Value {
    switch (code ?? Activation.NONE) {
      case Activation.NONE:
        return v;
      case Activation.RELU:
        return this.op('Relu', [v]);
      case Activation.RELU6:
        return this.op('Clip', [v, this.float(0), this.float(6)]);
      case Activation.RELU_N1_TO_1:
        return this.op('Clip', [v, this.float(-1), this.float(1)]);
      case Activation.TANH:
        return this.op('Tanh', [v]);
      case Activation.SIGN_BIT:
        return this.op('Sign', [v]);
      default:
        return this.fail(`unknown fused activation ${code}`);
    }
  }

  /** The output dtype of the op's i-th output, as the file declares it. */
  outputDtype(i = 0): DType {
    const t = this.sub.tensors[this.current.outputs[i]];
    const d = DTYPES[t.type];
    if (d === undefined) this.fail(`output "${t.name}" has element type ${t.type}, which mobilize cannot import`);
    return d!;
  }

  describe(op: TfliteOperator): string {
    const code = this.model.operatorCodes[op.opcodeIndex];
    return code.customCode ?? builtinName(code.builtinCode);
  }
}

/** A numeric field of the current op's options, or `fallback` when the file leaves it out. */
export function option(ctx: ImportContext, name: string, fallback = 0): number {
  const v = ctx.current.options?.fields[name];
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  return fallback;
}

export function optionList(ctx: ImportContext, name: string): number[] {
  const v = ctx.current.options?.fields[name];
  return Array.isArray(v) ? v : [];
}
