/**
 * Conv/Gemm + activation.
 *
 * `fusableActivation` describes the activation that is the single consumer of a Conv,
 * ConvTranspose, Gemm, MatMul or Add output. The standard graph keeps both nodes; exporters whose
 * formats carry an activation on the layer (TFLite `fused_activation_function`, NCNN
 * `activation_type`) call it to record the fusion there.
 *
 * `lower-fused-activation` (level 'all') rewrites Conv + activation into onnxruntime's
 * com.microsoft.FusedConv and Gemm + activation into com.microsoft.FusedGemm, for float32 and for
 * the activations onnxruntime's CPU kernels take:
 * - FusedConv (MLAS activations): `activation` Relu, Tanh, Sigmoid without parameters; Clip with
 *   `activation_params` [min, max], LeakyRelu [alpha], HardSigmoid [alpha, beta].
 * - FusedGemm (element-wise functors): `activation` Relu, Tanh, Sigmoid; LeakyRelu with
 *   `activation_alpha`; HardSigmoid with `activation_alpha` and `activation_beta` (both
 *   required by the kernel). No Clip.
 * It runs last: no other pass knows the contrib ops.
 */
import type { Attribute } from '../ir/attributes.js';
import type { Node } from '../ir/graph.js';
import { clipBounds, FLOAT32_MAX, replaceByNode } from './fusion-helpers.js';
import { dtypeOf, isOp, onlyConsumer } from './match.js';
import { pattern } from './pass.js';

export type FusedActivationOp = 'Relu' | 'Relu6' | 'Clip' | 'HardSwish' | 'Sigmoid' | 'Tanh' | 'LeakyRelu' | 'HardSigmoid';

export interface FusedActivation {
  /** Relu6 is a Clip to exactly [0, 6], reported apart for formats with a code for it. */
  op: FusedActivationOp;
  /** Clip and Relu6: [min, max] (±Infinity where unbounded); LeakyRelu: [alpha]; HardSigmoid: [alpha, beta]; else []. */
  params: number[];
  /** The activation node. */
  node: Node;
}

const PRODUCERS = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'Add'];
const ACTIVATIONS = ['Relu', 'Clip', 'HardSwish', 'Sigmoid', 'Tanh', 'LeakyRelu', 'HardSigmoid'];

/**
 * The activation applied to the output of `producer` (a Conv, ConvTranspose, Gemm, MatMul or
 * Add of the default domain) when it is that output's only reader and its parameters are
 * constants; undefined otherwise.
 */
export function fusableActivation(producer: Node): FusedActivation | undefined {
  if (!isOp(producer, ...PRODUCERS) || producer.outputs.length !== 1 || !producer.outputs[0]) return undefined;
  const out = producer.outputs[0];
  const act = onlyConsumer(out, ...ACTIVATIONS);
  if (!act || act.input(0) !== out || act.outputs.length !== 1 || !act.outputs[0]) return undefined;
  switch (act.opType) {
    case 'Clip': {
      const b = clipBounds(act);
      if (!b || b.min > b.max) return undefined;
      return { op: b.min === 0 && b.max === 6 ? 'Relu6' : 'Clip', params: [b.min, b.max], node: act };
    }
    case 'LeakyRelu':
      return { op: 'LeakyRelu', params: [act.float('alpha', 0.01)], node: act };
    case 'HardSigmoid':
      return { op: 'HardSigmoid', params: [act.float('alpha', 0.2), act.float('beta', 0.5)], node: act };
    default:
      return { op: act.opType as FusedActivationOp, params: [], node: act };
  }
}

const CONV_ATTRS = new Set(['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides']);
const GEMM_ATTRS = new Set(['alpha', 'beta', 'transA', 'transB']);

const floats = (value: number[]): Attribute => ({ type: 'floats', value });
const float = (value: number): Attribute => ({ type: 'float', value });
const finite = (x: number): number => Math.max(-FLOAT32_MAX, Math.min(FLOAT32_MAX, x));

/** FusedConv's activation attributes, or undefined when its CPU kernel has no such activation. */
function convActivation(a: FusedActivation): Array<[string, Attribute]> | undefined {
  switch (a.op) {
    case 'Relu':
    case 'Sigmoid':
    case 'Tanh':
      return [['activation', { type: 'string', value: a.op }]];
    case 'Relu6':
    case 'Clip':
      return [
        ['activation', { type: 'string', value: 'Clip' }],
        ['activation_params', floats(a.params.map(finite))],
      ];
    case 'LeakyRelu':
    case 'HardSigmoid':
      return [
        ['activation', { type: 'string', value: a.op }],
        ['activation_params', floats(a.params)],
      ];
    default:
      return undefined;
  }
}

/** FusedGemm's activation attributes, or undefined when its CPU kernel has no such activation. */
function gemmActivation(a: FusedActivation): Array<[string, Attribute]> | undefined {
  switch (a.op) {
    case 'Relu':
    case 'Sigmoid':
    case 'Tanh':
      return [['activation', { type: 'string', value: a.op }]];
    case 'LeakyRelu':
      return [
        ['activation', { type: 'string', value: 'LeakyRelu' }],
        ['activation_alpha', float(a.params[0])],
      ];
    case 'HardSigmoid':
      return [
        ['activation', { type: 'string', value: 'HardSigmoid' }],
        ['activation_alpha', float(a.params[0])],
        ['activation_beta', float(a.params[1])],
      ];
    default:
      return undefined;
  }
}

export const lowerFusedActivation = pattern<{ node: Node; act: Node; opType: string; attrs: Array<[string, Attribute]> }>({
  name: 'lower-fused-activation',
  description: 'fuses Conv/Gemm + activation into onnxruntime com.microsoft.FusedConv/FusedGemm (float32)',
  level: 'all',
  roots: ['Conv', 'Gemm'],
  match(node, ctx) {
    if (ctx.options.level !== 'all' || node.outputs.length !== 1 || !node.outputs[0]) return undefined;
    const isConv = node.opType === 'Conv';
    const known = isConv ? CONV_ATTRS : GEMM_ATTRS;
    if ([...node.attrs.keys()].some((k) => !known.has(k))) return undefined;
    if (node.inputs.some((v) => v !== null && dtypeOf(v) !== 'float32')) return undefined;
    // Older onnxruntime schemas of FusedGemm require C.
    if (!isConv && !node.input(2)) return undefined;
    const a = fusableActivation(node);
    if (!a || dtypeOf(a.node.output()) !== 'float32') return undefined;
    const extra = isConv ? convActivation(a) : gemmActivation(a);
    if (!extra) return undefined;
    return { node, act: a.node, opType: isConv ? 'FusedConv' : 'FusedGemm', attrs: [...node.attrs, ...extra] };
  },
  apply({ node, act, opType, attrs }, ctx) {
    if (ctx.model.opset('com.microsoft') === undefined) ctx.model.opsetImports.set('com.microsoft', 1);
    const fused = replaceByNode(act, opType, node.inputs, attrs, [node], 'com.microsoft');
    fused.name = node.name;
  },
});
