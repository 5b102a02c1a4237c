/**
 * Reads a .tflite file (a FlatBuffer, schema in schema.fbs) into a TfliteModel, checking it as it
 * goes: a file from anywhere must give a model or one bad-input line naming the file and the
 * problem — never a crash, a hang or a huge allocation. Offsets and vector lengths are checked by
 * CheckedByteBuffer on every read; the indices the format cross-references (buffers, tensors,
 * opcodes, subgraphs, quantization axes) are checked by validate.ts once the model is read.
 * Constant payloads are views into `bytes`, never copies.
 */
import { badInput, isMobilizeError } from '../../errors.js';
import { CheckedByteBuffer, FlatbufferFault } from './checked-buffer.js';
import * as tfl from './generated/index.js';
import type {
  TensorTypeValue,
  TfliteModel,
  TfliteOperator,
  TfliteOperatorCode,
  TfliteOptions,
  TfliteQuantization,
  TfliteSignatureDef,
  TfliteSubgraph,
  TfliteTensor,
} from './model.js';
import { optionsName, unpackOptions } from './options.js';
import { sparsityFromTable } from './sparsity.js';
import { validateTflite } from './validate.js';

export interface TfliteReadOptions {
  /** Names the file in error messages. */
  source?: string;
}

/** Reads an int vector element by element (the vector's length was checked against the file). */
function ints(bb: CheckedByteBuffer, length: number, at: (i: number) => number | null): number[] {
  bb.charge(length);
  const out = new Array<number>(length);
  for (let i = 0; i < length; i++) out[i] = at(i) ?? 0;
  return out;
}

function str(value: string | Uint8Array | null): string {
  return typeof value === 'string' ? value : '';
}

function uint64(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new FlatbufferFault(`${what} ${value} is beyond any file size`);
  return Number(value);
}

function readQuantization(bb: CheckedByteBuffer, q: tfl.QuantizationParameters): TfliteQuantization | undefined {
  if (q.detailsType() !== tfl.QuantizationDetails.NONE) {
    throw new FlatbufferFault('a tensor uses custom quantization details, which mobilize cannot interpret');
  }
  const floats = (length: number, at: (i: number) => number | null): Float32Array => {
    bb.charge(length);
    const out = new Float32Array(length);
    for (let i = 0; i < length; i++) out[i] = at(i) ?? 0;
    return out;
  };
  const scale = floats(q.scaleLength(), (i) => q.scale(i));
  const zpLength = q.zeroPointLength();
  bb.charge(zpLength);
  const zeroPoint: number[] = [];
  for (let i = 0; i < zpLength; i++) zeroPoint.push(Number(q.zeroPoint(i) ?? 0n));
  const min = q.minLength() > 0 ? floats(q.minLength(), (i) => q.min(i)) : undefined;
  const max = q.maxLength() > 0 ? floats(q.maxLength(), (i) => q.max(i)) : undefined;
  if (scale.length === 0 && zeroPoint.length === 0 && min === undefined && max === undefined) return undefined;
  const out: TfliteQuantization = { scale, zeroPoint, quantizedDimension: q.quantizedDimension() };
  if (min !== undefined) out.min = min;
  if (max !== undefined) out.max = max;
  return out;
}

function readTensor(bb: CheckedByteBuffer, t: tfl.Tensor): TfliteTensor {
  const tensor: TfliteTensor = {
    name: str(t.name()),
    shape: ints(bb, t.shapeLength(), (i) => t.shape(i)),
    type: t.type() as TensorTypeValue,
    buffer: t.buffer(),
  };
  const signatureLength = t.shapeSignatureLength();
  if (signatureLength > 0) tensor.shapeSignature = ints(bb, signatureLength, (i) => t.shapeSignature(i));
  const q = t.quantization();
  if (q !== null) {
    const quantization = readQuantization(bb, q);
    if (quantization !== undefined) tensor.quantization = quantization;
  }
  if (t.isVariable()) tensor.isVariable = true;
  const sparsity = t.sparsity();
  if (sparsity !== null) tensor.sparsity = sparsityFromTable(sparsity);
  return tensor;
}

/** One union member of an operator's options; the table is null when the type code is unknown. */
function unionOptions(union: 1 | 2, type: number, table: Parameters<typeof unpackOptions>[1] | null | undefined): TfliteOptions {
  const name = optionsName(union, type);
  if (name === undefined) throw new FlatbufferFault(`an operator has builtin options of unknown type ${type}`);
  if (table === null || table === undefined) throw new FlatbufferFault(`an operator's ${name} are missing`);
  return unpackOptions(name, table);
}

function readOptions(op: tfl.Operator): TfliteOptions | undefined {
  const type1 = op.builtinOptionsType();
  if (type1 !== tfl.BuiltinOptions.NONE)
    return unionOptions(
      1,
      type1,
      tfl.unionToBuiltinOptions(type1, (obj) => op.builtinOptions(obj)),
    );
  const type2 = op.builtinOptions2Type();
  if (type2 !== tfl.BuiltinOptions2.NONE)
    return unionOptions(
      2,
      type2,
      tfl.unionToBuiltinOptions2(type2, (obj) => op.builtinOptions2(obj)),
    );
  return undefined;
}

function readOperator(bb: CheckedByteBuffer, bytes: Uint8Array, o: tfl.Operator): TfliteOperator {
  const op: TfliteOperator = {
    opcodeIndex: o.opcodeIndex(),
    inputs: ints(bb, o.inputsLength(), (i) => o.inputs(i)),
    outputs: ints(bb, o.outputsLength(), (i) => o.outputs(i)),
  };
  const options = readOptions(o);
  if (options !== undefined) op.options = options;
  const customOffset = uint64(o.largeCustomOptionsOffset(), 'a custom-options offset');
  if (customOffset > 1) {
    const size = uint64(o.largeCustomOptionsSize(), 'a custom-options size');
    if (customOffset + size > bytes.length) throw new FlatbufferFault("an operator's custom options lie past the end of the file");
    op.customOptions = bytes.subarray(customOffset, customOffset + size);
  } else if (o.customOptionsLength() > 0) {
    const vectorField = o.bb_pos + bb.__offset(o.bb_pos, 14);
    const { start, length } = bb.vectorRange(vectorField, 1);
    op.customOptions = bytes.subarray(start, start + length);
  }
  const intermediates = o.intermediatesLength();
  if (intermediates > 0) op.intermediates = ints(bb, intermediates, (i) => o.intermediates(i));
  return op;
}

function readSubgraph(bb: CheckedByteBuffer, bytes: Uint8Array, g: tfl.SubGraph): TfliteSubgraph {
  const tensors: TfliteTensor[] = [];
  const tensorCount = g.tensorsLength();
  const tensor = new tfl.Tensor();
  for (let i = 0; i < tensorCount; i++) tensors.push(readTensor(bb, g.tensors(i, tensor)!));
  const operators: TfliteOperator[] = [];
  const opCount = g.operatorsLength();
  const operator = new tfl.Operator();
  for (let i = 0; i < opCount; i++) operators.push(readOperator(bb, bytes, g.operators(i, operator)!));
  const sub: TfliteSubgraph = {
    tensors,
    inputs: ints(bb, g.inputsLength(), (i) => g.inputs(i)),
    outputs: ints(bb, g.outputsLength(), (i) => g.outputs(i)),
    operators,
  };
  const name = str(g.name());
  if (name !== '') sub.name = name;
  return sub;
}

function readBuffer(bb: CheckedByteBuffer, bytes: Uint8Array, b: tfl.Buffer): Uint8Array {
  const offset = uint64(b.offset(), 'a buffer offset');
  if (offset > 1) {
    const size = uint64(b.size(), 'a buffer size');
    if (offset + size > bytes.length)
      throw new FlatbufferFault(`a buffer stored after the FlatBuffer (bytes ${offset}..${offset + size}) lies past the end of the file`);
    return bytes.subarray(offset, offset + size);
  }
  const field = bb.__offset(b.bb_pos, 4);
  if (field === 0) return bytes.subarray(0, 0);
  const { start, length } = bb.vectorRange(b.bb_pos + field, 1);
  return bytes.subarray(start, start + length);
}

function readSignature(bb: CheckedByteBuffer, s: tfl.SignatureDef): TfliteSignatureDef {
  const map = (length: number, at: (i: number) => tfl.TensorMap | null) => {
    bb.charge(length);
    const out: { name: string; tensorIndex: number }[] = [];
    for (let i = 0; i < length; i++) {
      const m = at(i)!;
      out.push({ name: str(m.name()), tensorIndex: m.tensorIndex() });
    }
    return out;
  };
  return {
    signatureKey: str(s.signatureKey()),
    subgraphIndex: s.subgraphIndex(),
    inputs: map(s.inputsLength(), (i) => s.inputs(i)),
    outputs: map(s.outputsLength(), (i) => s.outputs(i)),
  };
}

function readModelTable(bytes: Uint8Array): TfliteModel {
  if (bytes.length < 8) throw new FlatbufferFault(`the file is ${bytes.length} bytes, too short for a TFLite model`);
  if (String.fromCharCode(bytes[4], bytes[5], bytes[6], bytes[7]) !== 'TFL3')
    throw new FlatbufferFault('it has no "TFL3" identifier at byte 4');
  const bb = new CheckedByteBuffer(bytes);
  const root = tfl.Model.getRootAsModel(bb);
  bb.check(root.bb_pos, 4);
  const operatorCodes: TfliteOperatorCode[] = [];
  const codeCount = root.operatorCodesLength();
  for (let i = 0; i < codeCount; i++) {
    const c = root.operatorCodes(i)!;
    // Old writers fill only the byte field; new ones both (the byte saturating at 127).
    const code: TfliteOperatorCode = { builtinCode: Math.max(c.deprecatedBuiltinCode(), c.builtinCode()), version: c.version() };
    const custom = c.customCode();
    if (custom !== null) code.customCode = str(custom);
    operatorCodes.push(code);
  }
  const subgraphs: TfliteSubgraph[] = [];
  const subgraphCount = root.subgraphsLength();
  for (let i = 0; i < subgraphCount; i++) subgraphs.push(readSubgraph(bb, bytes, root.subgraphs(i)!));
  const buffers: Uint8Array[] = [];
  const bufferCount = root.buffersLength();
  const buffer = new tfl.Buffer();
  for (let i = 0; i < bufferCount; i++) buffers.push(readBuffer(bb, bytes, root.buffers(i, buffer)!));
  const signatureDefs: TfliteSignatureDef[] = [];
  const signatureCount = root.signatureDefsLength();
  for (let i = 0; i < signatureCount; i++) signatureDefs.push(readSignature(bb, root.signatureDefs(i)!));
  const metadata: { name: string; buffer: number }[] = [];
  const metadataCount = root.metadataLength();
  for (let i = 0; i < metadataCount; i++) {
    const m = root.metadata(i)!;
    metadata.push({ name: str(m.name()), buffer: m.buffer() });
  }
  const model: TfliteModel = { version: root.version(), operatorCodes, subgraphs, buffers, signatureDefs, metadata };
  const description = root.description();
  if (description !== null) model.description = str(description);
  return model;
}

/** Parses and checks a .tflite file. Throws badInput naming `source` and the fault. */
export function readTflite(bytes: Uint8Array, options: TfliteReadOptions = {}): TfliteModel {
  const source = options.source ?? 'model';
  let model: TfliteModel;
  try {
    model = readModelTable(bytes);
  } catch (e) {
    if (isMobilizeError(e)) throw e;
    const why = e instanceof FlatbufferFault ? e.message : `malformed FlatBuffer (${e instanceof Error ? e.message : String(e)})`;
    throw badInput(`${source}: not a readable TFLite model: ${why}; the file may be truncated or corrupted`);
  }
  validateTflite(model, source);
  return model;
}
