/**
 * Dropout: the identity at inference, and in training mode (opset 12's training_mode input) a
 * random mask drawn like the ONNX reference draws it (numpy's legacy MT19937), so a seeded node
 * gives the reference's mask.
 * Spec: https://onnx.ai/onnx/operators/onnx__Dropout.html
 */
import { type DType, dtypeCode } from '../ir/dtype.js';
import type { Value } from '../ir/graph.js';
import { fromOutput0, withGradients } from './grad.js';
import type { GradRule, KernelContext, OpSchema } from './schema.js';
import { fromNumbers, numbers } from './util.js';

// ---------------------------------------------------------------- Dropout

/**
 * MT19937 seeded like numpy's legacy `np.random.seed(int)`, whose uniform draws the ONNX
 * reference uses for Dropout's mask: with the same seed attribute the masks agree.
 */
class MersenneTwister {
  private readonly mt = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = this.mt[i - 1] ^ (this.mt[i - 1] >>> 30);
      this.mt[i] = Math.imul(1812433253, prev) + i;
    }
  }

  private next32(): number {
    if (this.index >= 624) {
      for (let i = 0; i < 624; i++) {
        const y = (this.mt[i] & 0x80000000) | (this.mt[(i + 1) % 624] & 0x7fffffff);
        this.mt[i] = this.mt[(i + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.index = 0;
    }
    let y = this.mt[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A double in [0, 1) with 53 random bits (numpy's random_sample). */
  uniform(): number {
    const a = this.next32() >>> 5;
    const b = this.next32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}

function dropoutRatio(ctx: KernelContext): number {
  if (ctx.opset < 12) return ctx.node.float('ratio', 0.5);
  const r = ctx.optional(1);
  return r ? numbers(r)[0] : 0.5;
}

// Outputs: output, mask (bool from opset 10; the input's type before).
const dropout: OpSchema = {
  op: 'Dropout',
  attrs: { ratio: 'float', seed: 'int', is_test: 'int', consumed_inputs: 'ints' },
  infer(ctx) {
    ctx.output(0, ctx.dtype(0), ctx.shape(0));
    if (ctx.hasOutput(1)) ctx.output(1, ctx.opset >= 10 ? 'bool' : ctx.dtype(0), ctx.shape(0));
  },
  kernel(ctx) {
    const x = ctx.input(0);
    const maskDtype: DType = ctx.opset >= 10 ? 'bool' : x.dtype;
    // Only opset 12's training_mode input asks for random dropping; older graphs are run for
    // inference, where Dropout is the identity (as runtimes do with opset ≤ 6's is_test too).
    const modeT = ctx.opset >= 12 ? ctx.optional(2) : undefined;
    const training = modeT ? numbers(modeT)[0] !== 0 : false;
    const ratio = dropoutRatio(ctx);
    if (!training || ratio === 0) return [x, fromNumbers(maskDtype, x.dims, new Uint8Array(x.size).fill(1))];
    if (ratio < 0 || ratio > 1) ctx.fail(`ratio ${ratio} is outside [0, 1]`);
    const seed = ctx.node.int('seed') ?? Math.floor(Math.random() * 2 ** 32);
    const rng = new MersenneTwister(seed);
    const v = numbers(x);
    const y = new Float64Array(v.length);
    const mask = new Uint8Array(v.length);
    const scale = ratio < 1 ? 1 / (1 - ratio) : 0;
    for (let i = 0; i < v.length; i++) {
      mask[i] = rng.uniform() >= ratio ? 1 : 0;
      y[i] = mask[i] ? v[i] * scale : 0;
    }
    return [fromNumbers(x.dtype, x.dims, y), fromNumbers(maskDtype, x.dims, mask)];
  },
};

/**
 * Dropout's gradient: dY where the mask kept an element, scaled like the forward pass by
 * 1/(1 − ratio); the identity in inference mode. The mask output is added to the node when
 * missing.
 */
const dropoutGrad: GradRule = fromOutput0((c, dy) => {
  if (!c.needs(0)) return;
  if (c.needs(1)) c.fail('the gradient with respect to the dropout ratio is not supported');
  const modeInput = c.optionalInput(2);
  const modeConst = c.constant(modeInput);
  const training = modeInput !== undefined && (modeConst === undefined || numbers(modeConst)[0] !== 0);
  if (!training) return c.setGrad(0, dy);
  const x = c.input(0);
  const t = c.dtype(x);
  const ratioInput = c.optionalInput(1);
  const ratioConst = ratioInput ? c.constant(ratioInput) : undefined;
  let scale: Value;
  if (!ratioInput || ratioConst) {
    const ratio = ratioConst ? numbers(ratioConst)[0] : 0.5;
    if (ratio >= 1) return;
    scale = c.scalar(1 / (1 - ratio), t);
  } else {
    scale = c.op('Div', [c.scalar(1, t), c.op('Sub', [c.scalar(1, t), c.op('Cast', [ratioInput], { to: dtypeCode(t) })])]);
  }
  // A training_mode only known when running: scale 1 when it is false (the mask is all ones then).
  if (!modeConst && modeInput) scale = c.op('Where', [modeInput, scale, c.scalar(1, t)]);
  const mask = c.forwardOutput(1, { kind: 'tensor', dtype: 'bool', shape: c.shape(x) });
  c.setGrad(0, c.op('Where', [mask, c.op('Mul', [dy, scale]), c.scalar(0, t)]));
});

export const DROPOUT_OPS: OpSchema[] = withGradients([dropout], { Dropout: dropoutGrad });
