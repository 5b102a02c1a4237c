/** Small models and data for the quality tools' tests: each shows one failure mode of int8. */
import { ArrayDataset } from '../../src/data/arrays.js';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Backend } from '../../src/runtime/backend.js';
import { Random } from '../../src/util/random.js';
import { uniform } from './helpers.js';

/** Uniform in [lo, hi). */
export function between(dims: number[], lo: number, hi: number, seed: number): Tensor {
  const rng = new Random(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return Tensor.from(
    'float32',
    dims,
    Float32Array.from({ length: n }, () => lo + (hi - lo) * rng.next()),
  );
}

/** Multiplies output channel c of a [C, …] weight (and bias) by f[c]. */
function scaleChannels(t: Tensor, f: number[]): Tensor {
  const d = Float32Array.from(t.toFloat32());
  const per = d.length / t.dims[0];
  for (let c = 0; c < t.dims[0]; c++) for (let k = c * per; k < (c + 1) * per; k++) d[k] *= f[c % f.length];
  return Tensor.from('float32', t.dims, d);
}

/**
 * x[N,3,8,8] → Conv 3→8 (3×3) → act → depthwise Conv 8 (3×3) → Relu → Conv 8→4 (1×1) → y, the
 * first convolution's channels spread over four orders of magnitude. `act` Relu (equalizable)
 * or Clip(0, 6) (not).
 */
export function depthwiseNet(act: 'Relu' | 'Clip' = 'Relu'): Model {
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', ['N', 3, 8, 8]);
  const spread = [1, 100, 0.01, 5, 0.2, 30, 2, 0.05];
  const c1 = b.op(
    'Conv',
    [
      x,
      b.constant('w1', scaleChannels(uniform([8, 3, 3, 3], 0.5, 1), spread)),
      b.constant('b1', scaleChannels(uniform([8], 0.2, 2), spread)),
    ],
    { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
    { name: 'conv1' },
  );
  const a1 =
    act === 'Relu'
      ? b.op('Relu', [c1], {}, { name: 'act1' })
      : b.op('Clip', [c1, b.floats('lo', [], [0]), b.floats('hi', [], [6])], {}, { name: 'act1' });
  const dw = b.op(
    'Conv',
    [a1, b.constant('wd', uniform([8, 1, 3, 3], 0.5, 3)), b.constant('bd', uniform([8], 0.1, 4))],
    { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 8 },
    { name: 'dw' },
  );
  const a2 = b.op('Relu', [dw], {}, { name: 'act2' });
  const pw = b.op(
    'Conv',
    [a2, b.constant('wp', uniform([4, 8, 1, 1], 0.5, 5)), b.constant('bp', uniform([4], 0.1, 6))],
    { kernel_shape: [1, 1] },
    { name: 'pw' },
  );
  b.output(pw, 'y');
  return b.build();
}

/**
 * x[N,4,8,8] → depthwise Conv (3×3, bias) → y. Each channel's kernel is one large weight and
 * eight small ones that int8 rounds to zero: with inputs of mean 1, the output's mean shifts.
 */
export function biasedDepthwise(): Model {
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', ['N', 4, 8, 8]);
  const w = new Float32Array(4 * 9);
  for (let c = 0; c < 4; c++) for (let k = 0; k < 9; k++) w[c * 9 + k] = k === 4 ? 1 : 0.0035 * (c + 1) * (k % 2 ? 1 : 0.9);
  const y = b.op(
    'Conv',
    [x, b.floats('w', [4, 1, 3, 3], w), b.floats('bias', [4], [0.1, -0.1, 0.2, 0])],
    { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 4 },
    { name: 'dw' },
  );
  b.output(y, 'y');
  return b.build();
}

/**
 * A classifier with one fragile layer: convB's output has a channel a thousand times larger
 * than the others, which a per-tensor 8-bit grid cannot hold together with them, and the
 * Sigmoid after it (its epilogue) squashes that channel back into [0, 1]. Quantizing convB (its
 * output) wipes the small channels out; convA, convC and fc, which see ordinary ranges, are
 * harmless.
 *   x[N,3,8,8] → convA (3→w, 3×3) → Relu → convB (w→w, 1×1) → Sigmoid → convC (w→w)
 *   → GlobalAveragePool → Flatten → fc (w→5) → logits
 * `balanced` then centres the pooled features and the logits on the data, so the classes split
 * the samples with margins an 8-bit grid resolves.
 */
export function fragileNet(width = 4): Model {
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', ['N', 3, 8, 8]);
  const w = width;
  const a = b.op(
    'Conv',
    [x, b.constant('wa', uniform([w, 3, 3, 3], 0.5, 11)), b.constant('ba', uniform([w], 0.1, 12))],
    { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
    { name: 'convA' },
  );
  const ra = b.op('Relu', [a], {}, { name: 'reluA' });
  const wb = scaleChannels(uniform([w, w, 1, 1], 1, 13), [1000, ...new Array(w - 1).fill(4)]);
  const cb = b.op('Conv', [ra, b.constant('wb', wb), b.constant('bb', uniform([w], 0.1, 14))], { kernel_shape: [1, 1] }, { name: 'convB' });
  const sb = b.op('Sigmoid', [cb], {}, { name: 'sigmoidB' });
  // convC ignores the large channel: what reaches the output is what the grid crushed.
  const wc = Float32Array.from(uniform([w, w, 1, 1], 2, 15).toFloat32(), (v, i) => (i % w === 0 ? 0 : v));
  const cc = b.op(
    'Conv',
    [sb, b.floats('wc', [w, w, 1, 1], wc), b.constant('bc', uniform([w], 0.1, 16))],
    { kernel_shape: [1, 1] },
    { name: 'convC' },
  );
  const g = b.op('GlobalAveragePool', [cc], {}, { name: 'gap' });
  const f = b.op('Flatten', [g], { axis: 1 }, { name: 'flatten' });
  const y = b.op(
    'Gemm',
    [f, b.constant('wf', uniform([5, w], 4, 17)), b.constant('bf', uniform([5], 0.1, 18))],
    { transB: 1 },
    { name: 'fc' },
  );
  b.output(y, 'logits');
  return b.build();
}

/** N×C×H×W samples whose channels each have their own level (so pooled features differ from sample to sample), plus noise. */
export function varied(dims: number[], seed: number): Tensor {
  const rng = new Random(seed);
  const [n, c, h, w] = dims;
  const out = new Float32Array(n * c * h * w);
  for (let i = 0; i < n * c; i++) {
    const level = rng.next() * 2 - 1;
    for (let k = 0; k < h * w; k++) out[i * h * w + k] = level + 0.3 * (rng.next() * 2 - 1);
  }
  return Tensor.from('float32', dims, out);
}

/** Subtracts from the bias initializer `name` the mean over samples of the model's output `output` ([N, C, …]), per C. */
async function centre(m: Model, inputs: Tensor, backend: Backend, output: string, name: string): Promise<void> {
  const probe = readOnnx(writeOnnx(m).model);
  const v = probe.graph.nodes.flatMap((n) => n.outputs).find((o) => o?.name === output);
  if (!v) throw new Error(`no tensor ${output}`);
  probe.graph.outputs.splice(0, probe.graph.outputs.length, v);
  v.type = { kind: 'tensor', dtype: 'float32' };
  const out = await run(probe, inputs, backend);
  const [n, c] = out.dims;
  const per = out.size / (n * c);
  const d = out.toFloat32();
  const init = m.graph.initializers.find((x) => x.name === name);
  if (!init?.initializer) throw new Error(`no initializer ${name}`);
  const b = Float32Array.from(init.initializer.toFloat32());
  for (let k = 0; k < c; k++) {
    let s = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < per; j++) s += d[(i * c + k) * per + j];
    b[k] -= s / (n * per);
  }
  init.initializer = Tensor.from('float32', init.initializer.dims, b);
}

/**
 * Centres fragileNet's pooled features (convC's bias) and logits (fc's bias) over the inputs, so
 * its arg-max spreads over the classes with margins, instead of naming one class for every sample.
 */
export async function balanced(m: Model, inputs: Tensor, backend: Backend): Promise<Model> {
  await centre(m, inputs, backend, 'gap_out', 'bc');
  await centre(m, inputs, backend, 'logits', 'bf');
  return m;
}

/** Inputs labelled with the float model's own arg-max: its top-1 is 100% by construction. */
export async function selfLabelled(m: Model, inputs: Tensor, backend: Backend): Promise<ArrayDataset> {
  const s = await backend.createSession(m);
  try {
    const out = Object.values(await s.run({ [s.inputNames[0]]: inputs }))[0];
    const [n, c] = out.dims;
    const d = out.toFloat32();
    const labels = Array.from({ length: n }, (_, i) => {
      let best = 0;
      for (let k = 1; k < c; k++) if (d[i * c + k] > d[i * c + best]) best = k;
      return best;
    });
    return new ArrayDataset('self-labelled', inputs, Tensor.from('int64', [n], labels));
  } finally {
    await s.release();
  }
}

/** Runs a model and returns its first output. */
export async function run(m: Model, x: Tensor, backend: Backend): Promise<Tensor> {
  const s = await backend.createSession(m);
  try {
    return Object.values(await s.run({ [s.inputNames[0]]: x }))[0];
  } finally {
    await s.release();
  }
}
