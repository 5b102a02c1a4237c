/**
 * Checks the cross-references of a TfliteModel that the FlatBuffer layer cannot: every buffer,
 * tensor, opcode and subgraph index in range, shapes that are real shapes, constant payloads of
 * the size their shape and type say, and quantization parameters that fit their tensor (the
 * per-channel axis inside the rank, one scale per slice). Runs on every model read.
 */
import { badInput } from '../../errors.js';
import { builtinName, TensorType, type TfliteModel, type TfliteTensor } from './model.js';

/** Bytes per element; undefined for types whose size is not fixed (STRING, RESOURCE, VARIANT). */
export const TENSOR_TYPE_BYTES: Record<number, number | undefined> = {
  [TensorType.FLOAT32]: 4,
  [TensorType.FLOAT16]: 2,
  [TensorType.INT32]: 4,
  [TensorType.UINT8]: 1,
  [TensorType.INT64]: 8,
  [TensorType.BOOL]: 1,
  [TensorType.INT16]: 2,
  [TensorType.COMPLEX64]: 8,
  [TensorType.INT8]: 1,
  [TensorType.FLOAT64]: 8,
  [TensorType.COMPLEX128]: 16,
  [TensorType.UINT64]: 8,
  [TensorType.UINT32]: 4,
  [TensorType.UINT16]: 2,
  [TensorType.INT4]: 1,
  [TensorType.BFLOAT16]: 2,
};

const MAX_RANK = 16;

function checkTensor(model: TfliteModel, t: TfliteTensor, where: string, fail: (msg: string) => never): void {
  if (!(t.type in TENSOR_TYPE_BYTES) && t.type !== TensorType.STRING && t.type !== TensorType.RESOURCE && t.type !== TensorType.VARIANT) {
    fail(`${where} has unknown element type ${t.type}`);
  }
  if (t.shape.length > MAX_RANK) fail(`${where} has rank ${t.shape.length} (at most ${MAX_RANK} is plausible)`);
  for (const d of t.shape) if (d < 0 && d !== -1) fail(`${where} has dimension ${d} in its shape [${t.shape.join(', ')}]`);
  if (t.shapeSignature !== undefined) {
    if (t.shapeSignature.length !== t.shape.length)
      fail(`${where} has a shape signature of rank ${t.shapeSignature.length} for shape [${t.shape.join(', ')}]`);
    for (const d of t.shapeSignature) if (d < -1) fail(`${where} has dimension ${d} in its shape signature`);
  }
  if (t.buffer >= model.buffers.length) fail(`${where} refers to buffer ${t.buffer}, but the file has ${model.buffers.length} buffers`);
  const data = model.buffers[t.buffer];
  const width = TENSOR_TYPE_BYTES[t.type];
  if (data.length > 0 && width !== undefined && t.sparsity === undefined) {
    let count = 1;
    for (const d of t.shape) count *= Math.max(d, 0);
    const packedInt4 = t.type === TensorType.INT4 && data.length === Math.ceil(count / 2);
    if (count * width !== data.length && !packedInt4) {
      fail(
        `${where} of shape [${t.shape.join(', ')}] needs ${count * width} bytes of data, but its buffer ${t.buffer} holds ${data.length}`,
      );
    }
  }
  const q = t.quantization;
  if (q !== undefined) {
    if (q.zeroPoint.length !== 0 && q.zeroPoint.length !== q.scale.length) {
      fail(`${where} has ${q.scale.length} quantization scales but ${q.zeroPoint.length} zero points`);
    }
    for (const s of q.scale) if (!Number.isFinite(s)) fail(`${where} has a non-finite quantization scale ${s}`);
    if (q.scale.length > 1) {
      // Some converters leave a 1-D bias with the axis of its conv's filter (3): the only axis a
      // 1-D tensor has is meant, as TFLite Micro reads it; anything else out of range is refused.
      const axis = t.shape.length === 1 ? 0 : q.quantizedDimension;
      if (axis < 0 || axis >= t.shape.length) fail(`${where} has quantized_dimension ${axis}, outside its rank ${t.shape.length}`);
      if (t.shape[axis] !== q.scale.length) {
        fail(`${where} has ${q.scale.length} per-channel scales along axis ${axis}, whose size is ${t.shape[axis]}`);
      }
    }
  }
  if (t.sparsity !== undefined) {
    const s = t.sparsity;
    if (s.traversalOrder.length !== s.dimMetadata.length)
      fail(`${where} has sparsity metadata for ${s.dimMetadata.length} of ${s.traversalOrder.length} traversed dims`);
    if (s.traversalOrder.length > 2 * MAX_RANK) fail(`${where} has ${s.traversalOrder.length} sparse traversal dims`);
  }
}

/** Throws badInput (naming `source`) at the first reference that points nowhere. */
export function validateTflite(model: TfliteModel, source: string): void {
  const fail = (msg: string): never => {
    throw badInput(`${source}: ${msg}; the file is not a valid TFLite model`);
  };
  if (model.version !== 3) fail(`schema version ${model.version} is not supported (TFLite files are version 3)`);
  if (model.subgraphs.length === 0) fail('the model has no subgraph');
  if (model.buffers.length === 0 || model.buffers[0].length !== 0) fail('buffer 0 must exist and be empty');
  for (const [i, code] of model.operatorCodes.entries()) {
    if (code.builtinCode < 0) fail(`operator code ${i} has builtin code ${code.builtinCode}`);
  }
  for (const [g, sub] of model.subgraphs.entries()) {
    const inGraph = g === 0 ? '' : ` of subgraph ${g}`;
    const count = sub.tensors.length;
    for (const [i, t] of sub.tensors.entries()) checkTensor(model, t, `tensor ${i} "${t.name}"${inGraph}`, fail);
    const tensorRef = (idx: number, what: string, optional: boolean) => {
      if (optional && idx === -1) return;
      if (!Number.isInteger(idx) || idx < 0 || idx >= count) fail(`${what} refers to tensor ${idx}, but the subgraph has ${count} tensors`);
    };
    for (const idx of sub.inputs) tensorRef(idx, `an input${inGraph}`, false);
    for (const idx of sub.outputs) tensorRef(idx, `an output${inGraph}`, false);
    sub.operators.forEach((op, k) => {
      if (op.opcodeIndex >= model.operatorCodes.length) {
        fail(`operator ${k}${inGraph} uses opcode ${op.opcodeIndex}, but the file has ${model.operatorCodes.length} operator codes`);
      }
      const name = `operator ${k} (${builtinName(model.operatorCodes[op.opcodeIndex].builtinCode)})${inGraph}`;
      for (const idx of op.inputs) tensorRef(idx, name, true);
      for (const idx of op.outputs) tensorRef(idx, name, false);
      for (const idx of op.intermediates ?? []) tensorRef(idx, name, false);
    });
  }
  for (const sig of model.signatureDefs) {
    const sub = model.subgraphs[sig.subgraphIndex];
    if (sub === undefined)
      fail(`signature "${sig.signatureKey}" refers to subgraph ${sig.subgraphIndex}, but the file has ${model.subgraphs.length}`);
    for (const m of [...sig.inputs, ...sig.outputs]) {
      if (m.tensorIndex >= sub.tensors.length)
        fail(`signature "${sig.signatureKey}" maps "${m.name}" to tensor ${m.tensorIndex}, outside its subgraph`);
    }
  }
  for (const m of model.metadata) {
    if (m.buffer >= model.buffers.length)
      fail(`metadata "${m.name}" refers to buffer ${m.buffer}, but the file has ${model.buffers.length}`);
  }
}
