/**
 * Writes a TfliteModel as a .tflite FlatBuffer (schema.fbs, version 3). Constant payloads are
 * 16-byte aligned from the start of the file (the runtime maps them in place) and copied once,
 * straight into the output; identical payloads are stored once; buffers nothing refers to are
 * dropped. The FlatBuffer format addresses with 32-bit offsets, so a model past 2 GB is refused
 * with a clear message instead of being written wrong.
 */
import { Builder } from 'flatbuffers';
import { badInput } from '../../errors.js';
import { bytesEqual } from '../../ir/tensor.js';
import * as tfl from './generated/index.js';
import type { TfliteModel, TfliteOperator, TfliteQuantization, TfliteTensor } from './model.js';
import { packOptions } from './options.js';
import { packSparsity } from './sparsity.js';

const TWO_GB = 2 ** 31 - 1;

/** FNV-1a over a sample of the bytes plus the length: cheap, and equal bytes always collide. */
function fingerprint(b: Uint8Array): string {
  let h = 0x811c9dc5;
  const step = Math.max(1, Math.floor(b.length / 4096));
  for (let i = 0; i < b.length; i += step) h = Math.imul(h ^ b[i], 0x01000193);
  return `${b.length}:${h >>> 0}`;
}

/**
 * New buffer list: [empty, then each distinct referenced payload in first-use order], and the
 * map from old buffer index to new. Empty payloads all become buffer 0. Buffers of variable
 * tensors are never shared, since the runtime writes into them.
 */
function planBuffers(model: TfliteModel): { buffers: Uint8Array[]; remap: Map<number, number> } {
  const buffers: Uint8Array[] = [new Uint8Array(0)];
  const remap = new Map<number, number>([[0, 0]]);
  const seen = new Map<string, number[]>();
  const variable = new Set<number>();
  for (const g of model.subgraphs) for (const t of g.tensors) if (t.isVariable) variable.add(t.buffer);
  const use = (old: number) => {
    if (remap.has(old)) return;
    const data = model.buffers[old];
    if (data === undefined)
      throw badInput(`cannot write TFLite: a tensor refers to buffer ${old}, but the model has ${model.buffers.length}`);
    if (data.length === 0) {
      remap.set(old, 0);
      return;
    }
    if (!variable.has(old)) {
      const key = fingerprint(data);
      const candidates = seen.get(key) ?? [];
      const match = candidates.find((n) => bytesEqual(buffers[n], data));
      if (match !== undefined) {
        remap.set(old, match);
        return;
      }
      candidates.push(buffers.length);
      seen.set(key, candidates);
    }
    remap.set(old, buffers.length);
    buffers.push(data);
  };
  for (const g of model.subgraphs) for (const t of g.tensors) use(t.buffer);
  for (const m of model.metadata) use(m.buffer);
  return { buffers, remap };
}

function writeQuantization(b: Builder, q: TfliteQuantization): number {
  const scale = tfl.QuantizationParameters.createScaleVector(b, q.scale);
  const zeroPoint = tfl.QuantizationParameters.createZeroPointVector(
    b,
    q.zeroPoint.map((z) => BigInt(z)),
  );
  const min = q.min === undefined ? 0 : tfl.QuantizationParameters.createMinVector(b, q.min);
  const max = q.max === undefined ? 0 : tfl.QuantizationParameters.createMaxVector(b, q.max);
  tfl.QuantizationParameters.startQuantizationParameters(b);
  if (min) tfl.QuantizationParameters.addMin(b, min);
  if (max) tfl.QuantizationParameters.addMax(b, max);
  tfl.QuantizationParameters.addScale(b, scale);
  tfl.QuantizationParameters.addZeroPoint(b, zeroPoint);
  tfl.QuantizationParameters.addQuantizedDimension(b, q.quantizedDimension);
  return tfl.QuantizationParameters.endQuantizationParameters(b);
}

function writeTensor(b: Builder, t: TfliteTensor, buffer: number): number {
  const name = b.createString(t.name);
  const shape = tfl.Tensor.createShapeVector(b, t.shape);
  const signature = t.shapeSignature === undefined ? 0 : tfl.Tensor.createShapeSignatureVector(b, t.shapeSignature);
  const quantization = t.quantization === undefined ? 0 : writeQuantization(b, t.quantization);
  const sparsity = t.sparsity === undefined ? 0 : packSparsity(b, t.sparsity);
  tfl.Tensor.startTensor(b);
  tfl.Tensor.addShape(b, shape);
  tfl.Tensor.addType(b, t.type);
  tfl.Tensor.addBuffer(b, buffer);
  tfl.Tensor.addName(b, name);
  if (quantization) tfl.Tensor.addQuantization(b, quantization);
  if (t.isVariable) tfl.Tensor.addIsVariable(b, true);
  if (sparsity) tfl.Tensor.addSparsity(b, sparsity);
  if (signature) tfl.Tensor.addShapeSignature(b, signature);
  return tfl.Tensor.endTensor(b);
}

function writeOperator(b: Builder, op: TfliteOperator, where: string): number {
  const inputs = tfl.Operator.createInputsVector(b, op.inputs);
  const outputs = tfl.Operator.createOutputsVector(b, op.outputs);
  let options: { union: 1 | 2; code: number; offset: number } | undefined;
  if (op.options !== undefined) {
    try {
      options = packOptions(b, op.options);
    } catch (e) {
      throw badInput(`cannot write TFLite ${where}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const custom = op.customOptions === undefined ? 0 : b.createByteVector(op.customOptions);
  const intermediates = op.intermediates === undefined ? 0 : tfl.Operator.createIntermediatesVector(b, op.intermediates);
  tfl.Operator.startOperator(b);
  tfl.Operator.addOpcodeIndex(b, op.opcodeIndex);
  tfl.Operator.addInputs(b, inputs);
  tfl.Operator.addOutputs(b, outputs);
  if (options?.union === 1) {
    tfl.Operator.addBuiltinOptionsType(b, options.code);
    tfl.Operator.addBuiltinOptions(b, options.offset);
  } else if (options?.union === 2) {
    tfl.Operator.addBuiltinOptions2Type(b, options.code);
    tfl.Operator.addBuiltinOptions2(b, options.offset);
  }
  if (custom) tfl.Operator.addCustomOptions(b, custom);
  if (intermediates) tfl.Operator.addIntermediates(b, intermediates);
  return tfl.Operator.endOperator(b);
}

function offsets(b: Builder, count: number, make: (i: number) => number): number {
  const list: number[] = [];
  for (let i = 0; i < count; i++) list.push(make(i));
  b.startVector(4, list.length, 4);
  for (let i = list.length - 1; i >= 0; i--) b.addOffset(list[i]);
  return b.endVector();
}

/** Serialises `model`; the result starts with the root offset and the "TFL3" identifier. */
export function writeTflite(model: TfliteModel): Uint8Array {
  const { buffers, remap } = planBuffers(model);
  let payload = 0;
  for (const data of buffers) payload += data.length + 32;
  if (payload > TWO_GB) {
    throw badInput(
      `cannot write TFLite: the constants take ${(payload / 2 ** 30).toFixed(2)} GB, past the 2 GB a FlatBuffer can address; shrink the model (quantize to int8 or fp16) first`,
    );
  }
  // Size the builder up front: growing it copies everything written so far, weights included.
  let tables = 65536;
  for (const g of model.subgraphs) {
    for (const t of g.tensors) tables += 128 + 2 * t.name.length + 8 * t.shape.length + 16 * (t.quantization?.scale.length ?? 0);
    for (const op of g.operators) tables += 128 + 4 * (op.inputs.length + op.outputs.length) + (op.customOptions?.length ?? 0);
  }
  const b = new Builder(Math.min(TWO_GB, payload + tables));

  // Buffers first: the builder writes back to front, so they end up at the end of the file,
  // after the small tables, as the TFLite converter lays them out.
  const bufferTables = buffers.map((data) => {
    let vector = 0;
    if (data.length > 0) {
      b.prep(16, data.length);
      vector = b.createByteVector(data);
    }
    tfl.Buffer.startBuffer(b);
    if (vector) tfl.Buffer.addData(b, vector);
    return tfl.Buffer.endBuffer(b);
  });
  const buffersVector = offsets(b, bufferTables.length, (i) => bufferTables[i]);

  const subgraphsVector = offsets(b, model.subgraphs.length, (g) => {
    const sub = model.subgraphs[g];
    const tensors = offsets(b, sub.tensors.length, (i) => writeTensor(b, sub.tensors[i], remap.get(sub.tensors[i].buffer) ?? 0));
    const ops = offsets(b, sub.operators.length, (i) => writeOperator(b, sub.operators[i], `operator ${i} of subgraph ${g}`));
    const inputs = tfl.SubGraph.createInputsVector(b, sub.inputs);
    const outputs = tfl.SubGraph.createOutputsVector(b, sub.outputs);
    const name = sub.name === undefined ? 0 : b.createString(sub.name);
    tfl.SubGraph.startSubGraph(b);
    tfl.SubGraph.addTensors(b, tensors);
    tfl.SubGraph.addInputs(b, inputs);
    tfl.SubGraph.addOutputs(b, outputs);
    tfl.SubGraph.addOperators(b, ops);
    if (name) tfl.SubGraph.addName(b, name);
    return tfl.SubGraph.endSubGraph(b);
  });

  const codesVector = offsets(b, model.operatorCodes.length, (i) => {
    const c = model.operatorCodes[i];
    const custom = c.customCode === undefined ? 0 : b.createString(c.customCode);
    tfl.OperatorCode.startOperatorCode(b);
    // Readers older than the int32 field look at the byte one; it saturates at 127.
    tfl.OperatorCode.addDeprecatedBuiltinCode(b, Math.min(c.builtinCode, 127));
    if (custom) tfl.OperatorCode.addCustomCode(b, custom);
    tfl.OperatorCode.addVersion(b, c.version);
    tfl.OperatorCode.addBuiltinCode(b, c.builtinCode);
    return tfl.OperatorCode.endOperatorCode(b);
  });

  const signaturesVector = offsets(b, model.signatureDefs.length, (i) => {
    const s = model.signatureDefs[i];
    const maps = (list: { name: string; tensorIndex: number }[]) =>
      offsets(b, list.length, (k) => {
        const name = b.createString(list[k].name);
        return tfl.TensorMap.createTensorMap(b, name, list[k].tensorIndex);
      });
    const inputs = maps(s.inputs);
    const outputs = maps(s.outputs);
    const key = b.createString(s.signatureKey);
    tfl.SignatureDef.startSignatureDef(b);
    tfl.SignatureDef.addInputs(b, inputs);
    tfl.SignatureDef.addOutputs(b, outputs);
    tfl.SignatureDef.addSignatureKey(b, key);
    tfl.SignatureDef.addSubgraphIndex(b, s.subgraphIndex);
    return tfl.SignatureDef.endSignatureDef(b);
  });

  const metadataVector = offsets(b, model.metadata.length, (i) => {
    const m = model.metadata[i];
    const name = b.createString(m.name);
    return tfl.Metadata.createMetadata(b, name, remap.get(m.buffer) ?? 0);
  });

  const description = b.createString(model.description ?? 'mobilize');
  tfl.Model.startModel(b);
  tfl.Model.addVersion(b, model.version);
  tfl.Model.addOperatorCodes(b, codesVector);
  tfl.Model.addSubgraphs(b, subgraphsVector);
  tfl.Model.addDescription(b, description);
  tfl.Model.addBuffers(b, buffersVector);
  if (model.metadata.length > 0) tfl.Model.addMetadata(b, metadataVector);
  if (model.signatureDefs.length > 0) tfl.Model.addSignatureDefs(b, signaturesVector);
  tfl.Model.finishModelBuffer(b, tfl.Model.endModel(b));
  return b.asUint8Array();
}
