/**
 * TFLite → IR: the main subgraph of a TfliteModel becomes an ONNX-op graph that onnxruntime runs
 * with the outputs the TFLite interpreter gives. Inputs and outputs keep the file's names,
 * shapes (NHWC) and element types, so users feed the same tensors as to TFLite; quantized
 * tensors become QuantizeLinear/DequantizeLinear pairs with the file's scales, zero points and
 * per-channel axes; fp16 weights behind DEQUANTIZE become float32 constants; fused activations
 * become explicit ops; sparse constants are expanded. Ops with no lowering (a custom op, LSTM,
 * control flow) are listed by name in one line before anything is built.
 */
import { badInput, firstLine, isMobilizeError } from '../../errors.js';
import { ModelBuilder } from '../../ir/builder.js';
import type { Model } from '../../ir/graph.js';
import { isUnused } from '../../passes/match.js';
import { DTYPES } from './import/constants.js';
import { ImportContext } from './import/context.js';
import { BUILTIN_LOWERINGS, CUSTOM_LOWERINGS, type Lowering } from './import/lowerings.js';
import { builtinName, type TfliteModel } from './model.js';

export interface TfliteImportOptions {
  /** Names the file in messages. */
  source?: string;
  /** ONNX opset of the result (default 17; QDQ with per-channel axes needs 13 or later). */
  opset?: number;
}

/** The ops of the main subgraph that have no lowering, as "NAME ×count" entries. */
export function unsupportedOps(model: TfliteModel): string[] {
  const missing = new Map<string, number>();
  for (const op of model.subgraphs[0]?.operators ?? []) {
    const code = model.operatorCodes[op.opcodeIndex];
    const known = code.customCode !== undefined ? CUSTOM_LOWERINGS.has(code.customCode) : BUILTIN_LOWERINGS.has(code.builtinCode);
    if (known) continue;
    const name = code.customCode !== undefined ? `custom ${code.customCode}` : builtinName(code.builtinCode);
    missing.set(name, (missing.get(name) ?? 0) + 1);
  }
  return [...missing].map(([name, n]) => (n > 1 ? `${name} ×${n}` : name));
}

export function importTflite(model: TfliteModel, options: TfliteImportOptions = {}): Model {
  const source = options.source ?? 'model';
  const sub = model.subgraphs[0];
  if (sub === undefined) throw badInput(`${source}: the TFLite model has no subgraph`);
  const missing = unsupportedOps(model);
  if (missing.length > 0) {
    throw badInput(
      `${source}: cannot import ${missing.length === 1 ? 'this TFLite op' : 'these TFLite ops'}: ${missing.join(', ')}; no standard ONNX lowering exists in mobilize`,
    );
  }
  const b = new ModelBuilder({ opset: options.opset ?? 17, name: sub.name ?? 'main', producer: 'mobilize (from TFLite)' });
  const ctx = new ImportContext(b, model, sub, source);
  for (const index of sub.inputs) {
    const t = sub.tensors[index];
    const dtype = DTYPES[t.type];
    if (dtype === undefined) throw badInput(`${source}: input "${t.name}" has element type ${t.type}, which mobilize cannot import`);
    ctx.setStored(index, b.input(b.graph.freshName(t.name || `input${index}`), dtype, [...t.shape]));
  }
  sub.operators.forEach((op, k) => {
    const code = model.operatorCodes[op.opcodeIndex];
    const name = ctx.describe(op);
    const lower = (
      code.customCode !== undefined ? CUSTOM_LOWERINGS.get(code.customCode) : BUILTIN_LOWERINGS.get(code.builtinCode)
    ) as Lowering;
    ctx.current = op;
    ctx.opName = `${name.toLowerCase()}_${k}`;
    try {
      lower(ctx);
    } catch (e) {
      // The reader checked every index; what is left is an op whose tensors do not fit its kind
      // (a filter of the wrong rank, a missing input): name the op rather than crash.
      if (isMobilizeError(e)) throw e;
      throw badInput(`${source}: operator ${k} (${name}) is malformed: ${firstLine(e)}`);
    }
  });
  ctx.opName = 'outputs';
  const used = new Set<string>();
  for (const index of sub.outputs) {
    const t = sub.tensors[index];
    let v = ctx.storedValue(index);
    // A graph output must be produced by a node of its own name: an input or constant read
    // straight through, or a tensor listed twice, goes through an Identity.
    if (v.initializer !== undefined || b.graph.inputs.includes(v) || used.has(v.name)) v = b.op('Identity', [v]);
    used.add(v.name);
    b.output(v, v.name === t.name || b.graph.hasName(t.name) ? undefined : t.name);
  }
  // Layout Transposes that the next spatial op did not need (it took the NCHW value directly).
  const g = b.graph;
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (n.outputs.every(isUnused)) g.removeNode(n);
  }
  g.removeUnusedInitializers();
  try {
    return b.build();
  } catch (e) {
    if (isMobilizeError(e)) throw e;
    throw badInput(`${source}: the imported graph is inconsistent: ${firstLine(e)}; the TFLite file's shapes do not fit its ops`);
  }
}
