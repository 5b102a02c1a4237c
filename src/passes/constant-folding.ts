/**
 * Constant folding: computes what the graph already knows before running.
 * - Constant nodes become initializers (one form of constant for everything downstream).
 * - Small integer tensors whose elements shape inference worked out — Shape of a static shape,
 *   and what Gather/Slice/Concat/arithmetic make of it — become constants: this is what folds the
 *   Shape → Gather → Unsqueeze → Concat → Reshape chains exporters leave, once shapes are known.
 * - Any other node whose inputs are all constant runs on its reference kernel, unless the result
 *   would be much larger than its inputs (an Expand of a scalar to a large tensor stays an Expand,
 *   so the file does not grow), or the op must not be folded (random ops; DequantizeLinear, whose
 *   int8 weights are the point of a quantized model).
 */
import { isOnnxDomain, type Node } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';
import { constantNodeValue, constantOf } from '../ops/constants.js';
import type { KernelContext } from '../ops/schema.js';
import { foldToConstants } from './edit.js';
import { graphPass, type PassContext } from './pass.js';

const NEVER_FOLD = new Set([
  'DequantizeLinear',
  'RandomNormal',
  'RandomUniform',
  'RandomNormalLike',
  'RandomUniformLike',
  'Bernoulli',
  'Multinomial',
]);

/** Largest shape-value tensor folded from inference results (elements). */
const SHAPE_VALUE_LIMIT = 1024;

function kernelContext(node: Node, inputs: Array<Tensor | undefined>, opset: number): KernelContext {
  return {
    node,
    opset,
    numInputs: inputs.length,
    input: (i) => {
      const t = inputs[i];
      if (!t) throw new Error(`input ${i} is missing`);
      return t;
    },
    optional: (i) => inputs[i],
    runSubgraph: () => {
      throw new Error('subgraphs are not folded');
    },
    fail: (message) => {
      throw new Error(message);
    },
  };
}

/** A Constant node's value, when it is dense. */
function foldConstantNode(node: Node): Tensor | undefined {
  return constantNodeValue(node.attrs);
}

/** The node's int outputs as constants, when shape inference knows all their elements. */
function foldShapeValues(node: Node, ctx: PassContext): Tensor[] | undefined {
  const out: Tensor[] = [];
  for (const v of node.outputs) {
    if (!v) return undefined;
    const dims = ctx.shapeValues.get(v);
    const t = v.type;
    if (!dims || t?.kind !== 'tensor' || (t.dtype !== 'int64' && t.dtype !== 'int32') || !t.shape || t.shape.length > 1) return undefined;
    if (dims.length > SHAPE_VALUE_LIMIT || !dims.every((d) => typeof d === 'number')) return undefined;
    if (t.shape.length === 1 && t.shape[0] !== dims.length) return undefined;
    if (t.shape.length === 0 && dims.length !== 1) return undefined;
    out.push(Tensor.from(t.dtype, t.shape.length === 0 ? [] : [dims.length], dims as number[]));
  }
  return out;
}

/** Runs the node's kernel on its constant inputs, within the size cap. */
function foldByKernel(node: Node, ctx: PassContext): Tensor[] | undefined {
  if (NEVER_FOLD.has(node.opType) || node.subgraphs().length > 0 || node.inputs.length === 0) return undefined;
  const kernel = ctx.registry.get(node.domain, node.opType)?.kernel;
  if (!kernel) return undefined;
  const inputs: Array<Tensor | undefined> = [];
  let inputBytes = 0;
  for (const v of node.inputs) {
    if (!v) {
      inputs.push(undefined);
      continue;
    }
    const c = constantOf(v);
    if (!c) return undefined;
    inputs.push(c);
    inputBytes += c.byteLength;
  }
  let outs: Tensor[];
  try {
    outs = kernel(kernelContext(node, inputs, ctx.model.opset(node.domain) ?? ctx.opset));
  } catch {
    return undefined;
  }
  const outBytes = outs.reduce((a, t) => a + t.byteLength, 0);
  if (outBytes > inputBytes + ctx.options.foldLimit) return undefined;
  if (node.outputs.some((v, i) => v && !outs[i])) return undefined;
  return outs;
}

export const constantFolding = graphPass({
  name: 'constant-folding',
  description: 'turns Constant nodes into initializers and computes nodes whose inputs are all known',
  level: 'basic',
  run(g, ctx) {
    let count = 0;
    for (const node of [...g.nodes]) {
      if (node.removed || !isOnnxDomain(node.domain)) continue;
      const values =
        node.opType === 'Constant'
          ? (() => {
              const t = foldConstantNode(node);
              return t ? [t] : undefined;
            })()
          : (foldShapeValues(node, ctx) ?? foldByKernel(node, ctx));
      if (!values) continue;
      foldToConstants(node, values);
      count++;
    }
    return count;
  },
});
