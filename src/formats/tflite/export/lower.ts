/**
 * The lowering driver: graph inputs become TFLite input tensors (NHWC for rank-4 inputs with
 * io 'nhwc'), each node is lowered in topological order by its entry in the lowering table, and
 * each graph output is delivered in the layout and type asked for, under its ONNX name. The
 * signature def lists inputs and outputs by those names.
 */
import { badInput } from '../../../errors.js';
import { isOnnxDomain, type Model, type Value } from '../../../ir/graph.js';
import { formatShape, isStaticShape, isTensorType } from '../../../ir/types.js';
import { Builtin, TensorType } from '../model.js';
import { TfliteBuilder } from './builder.js';
import { LowerContext, type LowerSettings } from './context.js';
import { identity, NHWC, permuteShape } from './layout.js';
import { LOWERINGS } from './lower/index.js';
import { type ActivationParams, quantization } from './quant.js';

/** Ops that only compute shapes: left in the graph, they mean the shapes were not static. */
const SHAPE_COMPUTATIONS = new Set(['Shape', 'Size', 'ConstantOfShape', 'Range', 'NonZero']);

function ioLayout(settings: LowerSettings, rank: number): readonly number[] {
  return settings.io === 'nhwc' && rank === 4 ? NHWC : identity(rank);
}

function checkInput(v: Value): number[] {
  const t = v.type;
  if (!isTensorType(t) || !t.shape)
    throw badInput(`input "${v.name}" has no known shape; give it with --input-shape ${v.name}:1x3x224x224 (its dims)`);
  if (!isStaticShape(t.shape)) {
    // A free batch dim becomes 1; the others are sizes only the user knows (an image's height, say).
    const pattern = t.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 ? 1 : `<${d}>`)).join('x');
    const example = t.shape.map((d, i) => (typeof d === 'number' ? d : i === 0 ? 1 : 224)).join('x');
    throw badInput(
      `input "${v.name}" has dynamic dims ${formatShape(t.shape)}, which TFLite cannot take: fix them with --input-shape ${v.name}:${pattern} (the sizes the app will feed, e.g. ${v.name}:${example})`,
    );
  }
  if (t.dtype !== 'float32') throw badInput(`input "${v.name}" is ${t.dtype}: only float32 inputs are exported to TFLite`);
  return t.shape;
}

function uint8Params(p: ActivationParams): ActivationParams {
  return { scale: p.scale, zeroPoint: p.zeroPoint + 128 };
}

export function lowerModel(model: Model, settings: LowerSettings, params: ReadonlyMap<Value, ActivationParams>): LowerContext {
  const g = model.graph;
  const b = new TfliteBuilder(`mobilize (${settings.precision})`);
  const ctx = new LowerContext(b, settings, params);
  ctx.legacySoftmax = (model.opset('') ?? 13) < 13;
  const ioType = (name: string) => (settings.precision === 'int8' ? (settings.ioOverrides?.get(name) ?? settings.ioType) : 'float');
  for (const v of g.inputs) {
    if (v.initializer) continue;
    const shape = checkInput(v);
    const perm = ioLayout(settings, shape.length);
    const p = params.get(v);
    const type = ioType(v.name);
    if (type !== 'float' && !p)
      throw badInput(`input "${v.name}" has no int8 parameters, so it cannot be given as ${type}: use --io-type float`);
    const tshape = permuteShape(shape, perm);
    if (p && type === 'uint8') {
      const u = b.tensor({ name: v.name, shape: tshape, type: TensorType.UINT8, quantization: quantization(uint8Params(p)) });
      b.sub.inputs.push(u);
      const t = ctx.temp(`${v.name}/int8`, tshape, 'int8', p);
      b.op(Builtin.QUANTIZE, [u], [t]);
      ctx.define(v, { tensor: t, perm, kind: 'int8', params: p });
    } else {
      b.sub.inputs.push(ctx.produce(v, perm, type === 'int8' ? 'int8' : 'float', p));
    }
  }
  const order = g.topoSort() ?? g.nodes;
  for (const node of order) {
    if (ctx.fused.has(node)) continue;
    if (!isOnnxDomain(node.domain))
      throw badInput(
        `cannot export ${node.describe()} to TFLite: op ${node.domain}.${node.opType} has no TFLite builtin (export the model optimized at --level basic)`,
      );
    if (node.subgraphs().length > 0)
      throw badInput(`cannot export ${node.describe()} to TFLite: control flow (${node.opType}) is not exported`);
    const lowering = LOWERINGS[node.opType];
    if (!lowering) {
      const why = SHAPE_COMPUTATIONS.has(node.opType)
        ? 'shape computations must fold to constants before export: fix the input dims with --input-shape (the exporter optimizes with them)'
        : `op ${node.opType} has no TFLite builtin`;
      throw badInput(`cannot export ${node.describe()} to TFLite: ${why}`);
    }
    lowering(ctx, node);
  }
  for (const v of g.outputs) {
    const perm = ioLayout(settings, ctx.rank(v));
    const type = ioType(v.name);
    const p = type !== 'float' ? ctx.paramsOf(v) : undefined;
    if (type !== 'float' && !p)
      throw badInput(`output "${v.name}" has no int8 parameters, so it cannot be given as ${type}: use --io-type float`);
    let t = ctx.read(v, perm, p ? 'int8' : 'float');
    if (p && type === 'uint8') {
      // The int8 tensor's own grid (a fixed-output op's may differ from the value's), shifted by 128.
      const q = b.sub.tensors[t].quantization;
      const own = q ? { scale: q.scale[0], zeroPoint: q.zeroPoint[0] } : p;
      const u = b.tensor({
        name: `${v.name}/uint8`,
        shape: b.sub.tensors[t].shape,
        type: TensorType.UINT8,
        quantization: quantization(uint8Params(own)),
      });
      b.op(Builtin.QUANTIZE, [t], [u]);
      t = u;
    }
    b.rename(t, v.name);
    b.sub.outputs.push(t);
  }
  b.model.signatureDefs.push({
    signatureKey: 'serving_default',
    subgraphIndex: 0,
    inputs: b.sub.inputs.map((t) => ({ name: b.sub.tensors[t].name, tensorIndex: t })),
    outputs: b.sub.outputs.map((t) => ({ name: b.sub.tensors[t].name, tensorIndex: t })),
  });
  return ctx;
}
