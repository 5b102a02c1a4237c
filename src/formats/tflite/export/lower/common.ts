/**
 * Helpers the op lowerings share: the lowering signature, fused activations, and the choice
 * between TFLite's SAME/VALID padding and an explicit PAD.
 */
import { badInput } from '../../../../errors.js';
import type { Node, Value } from '../../../../ir/graph.js';
import { fusableActivation } from '../../../../passes/fuse-activation.js';
import { Activation, type ActivationValue } from '../../model.js';
import type { LowerContext } from '../context.js';

export type Lowering = (ctx: LowerContext, node: Node) => void;

export function refuse(node: Node, reason: string): never {
  throw badInput(`cannot export ${node.describe()} to TFLite: ${reason}`);
}

export function input(node: Node, i: number, what = `input ${i}`): Value {
  const v = node.input(i);
  if (!v) return refuse(node, `its ${what} is missing`);
  return v;
}

/**
 * The activation TFLite can fuse into `node` (RELU, RELU6, RELU_N1_TO_1) when it is the only
 * reader of the node's output; the activation node is then marked lowered and its output is
 * what the fused op produces.
 */
export function fuseActivation(ctx: LowerContext, node: Node): { code: ActivationValue; out: Value } {
  const out = node.output(0);
  const f = out.isGraphOutput ? undefined : fusableActivation(node);
  let code: ActivationValue | undefined;
  if (f?.op === 'Relu') code = Activation.RELU;
  else if (f?.op === 'Relu6') code = Activation.RELU6;
  else if (f?.op === 'Clip' && f.params[0] === -1 && f.params[1] === 1) code = Activation.RELU_N1_TO_1;
  else if (f?.op === 'Clip' && f.params[0] === 0 && f.params[1] >= 3.4e38) code = Activation.RELU;
  if (!f || code === undefined) return { code: Activation.NONE, out };
  ctx.fused.add(f.node);
  return { code, out: f.node.output(0) };
}

export interface Window {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [top, left, bottom, right]. */
  pads: number[];
}

/** Kernel, strides, dilations and explicit pads of a 2-D Conv/Pool node, auto_pad resolved. */
export function window2d(node: Node, kernel: number[], inHW: number[]): Window {
  const strides = node.ints('strides', [1, 1]);
  const dilations = node.ints('dilations', [1, 1]);
  const autoPad = node.str('auto_pad', 'NOTSET');
  let pads = node.ints('pads', [0, 0, 0, 0]);
  if (autoPad === 'VALID') pads = [0, 0, 0, 0];
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const before: number[] = [];
    const after: number[] = [];
    for (let i = 0; i < 2; i++) {
      const out = Math.ceil(inHW[i] / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - inHW[i]);
      const small = Math.floor(total / 2);
      before.push(autoPad === 'SAME_UPPER' ? small : total - small);
      after.push(autoPad === 'SAME_UPPER' ? total - small : small);
    }
    pads = [before[0], before[1], after[0], after[1]];
  }
  if (strides.length !== 2 || dilations.length !== 2 || pads.length !== 4) return refuse(node, 'only 2-D windows are exported');
  return { kernel, strides, dilations, pads };
}

export type PaddingChoice = { padding: 0 | 1 } | { explicit: number[] };

/**
 * SAME (0) or VALID (1) when it computes exactly what ONNX's pads do for this input and output
 * size; otherwise the explicit [top, left, bottom, right] pads to apply first (then VALID).
 */
export function choosePadding(w: Window, inHW: readonly number[], outHW: readonly number[]): PaddingChoice {
  const eff = w.kernel.map((k, i) => (k - 1) * w.dilations[i] + 1);
  const valid = [0, 1].every((i) => w.pads[i] === 0 && Math.floor((inHW[i] - eff[i]) / w.strides[i]) + 1 === outHW[i]);
  if (valid) return { padding: 1 };
  const same = [0, 1].every((i) => {
    const out = Math.ceil(inHW[i] / w.strides[i]);
    const total = Math.max(0, (out - 1) * w.strides[i] + eff[i] - inHW[i]);
    return out === outHW[i] && Math.floor(total / 2) === w.pads[i];
  });
  if (same) return { padding: 0 };
  return { explicit: explicitPads(w, inHW, outHW) };
}

/** ONNX's begin pads, and the end padded far enough that VALID gives ONNX's output size (ceil_mode included). */
export function explicitPads(w: Window, inHW: readonly number[], outHW: readonly number[]): number[] {
  const end = [0, 1].map((i) => Math.max(0, (outHW[i] - 1) * w.strides[i] + (w.kernel[i] - 1) * w.dilations[i] + 1 - inHW[i] - w.pads[i]));
  return [w.pads[0], w.pads[1], end[0], end[1]];
}

/**
 * The fused activation an int8 op needs on its output grid. The interpreter turns a RELU6 (or
 * RELU_N1_TO_1) bound into grid steps and refuses a grid so fine that 6 / scale overflows int32;
 * when the grid cannot hold values above 6 anyway (below −1 / above 1), clamping to it is the
 * activation, so the weaker one is written.
 */
export function activationOnGrid(ctx: LowerContext, code: ActivationValue, out: Value, kind: 'float' | 'int8'): ActivationValue {
  const p = kind === 'int8' ? ctx.paramsOf(out) : undefined;
  if (!p || code === Activation.NONE) return code;
  const lo = (-128 - p.zeroPoint) * p.scale;
  const hi = (127 - p.zeroPoint) * p.scale;
  if (code === Activation.RELU6 && hi <= 6) return lo >= 0 ? Activation.NONE : Activation.RELU;
  if (code === Activation.RELU_N1_TO_1 && hi <= 1 && lo >= -1) return Activation.NONE;
  return code;
}
