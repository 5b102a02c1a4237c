/**
 * NCHW → NHWC at the model's boundary: the model takes its rank-4 (image) inputs as NHWC and gives
 * its rank-4 outputs as NHWC, which is what phone runtimes (TFLite, NCNN) and camera frames use.
 *
 * 1. `nhwcBoundaries`: each rank-4 graph input keeps its name but is declared [N,H,W,C]; a
 *    Transpose(perm [0,3,1,2]) right after it gives the rest of the graph the NCHW tensor it was
 *    written for. Each rank-4 graph output keeps its name but becomes Transpose(perm [0,2,3,1]) of
 *    the NCHW result. The model computes exactly what it did, with the layout changed at the edge.
 * 2. transpose-sinking (and merge-transposes) then move the input Transposes inward as far as the
 *    ops allow and it pays, so that for conv nets only the boundary Transposes remain: onnxruntime's
 *    CPU Conv is NCHW-only, so in an ONNX model they stop at the first Conv. The TFLite/NCNN
 *    exporters reuse transpose-sinking with their NHWC convolutions declared layout-transparent
 *    (see `transposeSinkingWith`), which carries the Transposes through the whole network until the
 *    input's and the output's cancel.
 *
 * Not part of the default pipeline: `mobilize optimize --layout nhwc` runs step 1, then the
 * pipeline (which includes transpose-sinking), and checks the result against the step-1 model,
 * which already takes NHWC. `layoutNhwc` does both steps for callers that want only this.
 */
import type { Graph, Model, Node, Value } from '../ir/graph.js';
import { isTensorType, type TensorType } from '../ir/types.js';
import { deadCode } from './dead-code.js';
import { type PassStat, runToFixedPoint } from './driver.js';
import { mergeTransposes } from './merge-transposes.js';
import type { OptimizeOptions } from './pass.js';
import { permuteShape } from './perm.js';
import { transposeSinking } from './transpose-sinking.js';

/** NHWC tensor → NCHW tensor. */
export const NHWC_TO_NCHW = [0, 3, 1, 2] as const;
/** NCHW tensor → NHWC tensor. */
export const NCHW_TO_NHWC = [0, 2, 3, 1] as const;

export interface NhwcOptions {
  /** Inputs to convert, by name (default: every rank-4 tensor input). */
  inputs?: readonly string[];
  /** Convert rank-4 outputs too (default true). */
  outputs?: boolean;
}

export interface NhwcBoundaries {
  /** Inputs now taken as NHWC. */
  inputs: string[];
  /** Outputs now given as NHWC. */
  outputs: string[];
}

/** The type of Transpose(v, perm), dims and their denotations permuted. */
function permutedType(t: TensorType, perm: readonly number[]): TensorType {
  const out: TensorType = { ...t, shape: t.shape ? permuteShape(t.shape, perm) : undefined };
  if (t.dimDenotations) out.dimDenotations = permuteShape(t.dimDenotations, perm);
  if (!t.shape) delete out.shape;
  return out;
}

function rank4(v: Value): TensorType | undefined {
  const t = v.type;
  return isTensorType(t) && t.shape?.length === 4 ? t : undefined;
}

function transposeNode(g: Graph, input: Value, output: Value, perm: readonly number[], before?: Node): Node {
  const node = g.addNode('Transpose', [input], [], { before, attrs: [['perm', { type: 'ints', value: [...perm] }]] });
  node.outputs.push(output);
  output.producer = node;
  return node;
}

/** Step 1: rank-4 inputs and outputs become NHWC, with Transposes at the boundary. */
export function nhwcBoundaries(model: Model, options: NhwcOptions = {}): NhwcBoundaries {
  const g = model.graph;
  const done: NhwcBoundaries = { inputs: [], outputs: [] };
  const firstNode = g.nodes[0];
  g.inputs.forEach((v, i) => {
    const t = rank4(v);
    // An input that is also an output (or an overridable initializer) is left as it is.
    if (!t || v.initializer || v.sparseInitializer || v.isGraphOutput) return;
    if (options.inputs && !options.inputs.includes(v.name)) return;
    const name = v.name;
    g.renameValue(v, g.freshName(`${name}_nchw`));
    const nhwc = g.createValue(name, permutedType(t, NCHW_TO_NHWC));
    nhwc.doc = v.doc;
    nhwc.metadata = v.metadata;
    g.inputs[i] = nhwc;
    transposeNode(g, nhwc, v, NHWC_TO_NCHW, firstNode);
    done.inputs.push(name);
  });
  if (options.outputs === false) return done;
  g.outputs.forEach((v, i) => {
    const t = rank4(v);
    // An output that is an input, or is listed twice, is left as it is.
    if (!t || v.isGraphInput || g.outputs.indexOf(v) !== g.outputs.lastIndexOf(v)) return;
    const name = v.name;
    g.renameValue(v, g.freshName(`${name}_nchw`));
    const nhwc = g.createValue(name, permutedType(t, NCHW_TO_NHWC));
    nhwc.doc = v.doc;
    nhwc.metadata = v.metadata;
    transposeNode(g, v, nhwc, NCHW_TO_NHWC);
    g.outputs[i] = nhwc;
    done.outputs.push(name);
  });
  return done;
}

export interface NhwcReport extends NhwcBoundaries {
  passes: PassStat[];
  /** Transposes in the top-level graph afterwards. */
  transposes: number;
}

/** Steps 1 and 2: boundary Transposes, then sinking (and merging) them to a fixed point. */
export function layoutNhwc(model: Model, options: NhwcOptions & Pick<OptimizeOptions, 'verifyEachPass'> = {}): NhwcReport {
  const boundaries = nhwcBoundaries(model, options);
  const { stats } = runToFixedPoint(model, [mergeTransposes, transposeSinking, deadCode], { verifyEachPass: options.verifyEachPass });
  const transposes = model.graph.nodes.filter((n) => n.opType === 'Transpose').length;
  return { ...boundaries, passes: stats, transposes };
}
