/**
 * Shared by the TFLite exporter tests: export a model, write it, run it on the real TFLite
 * interpreter (WASM) and on onnxruntime with the same seeded input, and measure how far apart
 * the outputs are; plus small models built in code.
 */

import { exportTflite, type TfliteExportOptions, type TfliteExportReport } from '../../src/formats/tflite/export/index.js';
import type { TfliteModel } from '../../src/formats/tflite/model.js';
import { writeTflite } from '../../src/formats/tflite/write.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { TensorType } from '../../src/ir/types.js';
import { transposeTensor } from '../../src/ops/shape.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { loadTflite } from '../../src/runtime/tflite.js';
import { Random } from '../../src/util/random.js';

export interface OutputAgreement {
  name: string;
  /** Largest |tflite − ort| over the largest |ort| (the output's scale). */
  relative: number;
  absolute: number;
  cosine: number;
}

export interface Exported {
  tflite: TfliteModel;
  report: TfliteExportReport;
  bytes: Uint8Array;
  outputs: OutputAgreement[];
}

export function staticShape(v: { type?: unknown }): number[] {
  return (v.type as TensorType).shape as number[];
}

/** A smooth, image-like input in [-1, 1]. */
export function imageInput(dims: number[], phase = 0): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return Tensor.from(
    'float32',
    dims,
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + phase) * 0.7 + Math.cos(i * 0.011) * 0.3),
  );
}

function agreement(name: string, ref: Tensor, got: Tensor): OutputAgreement {
  const a = ref.toFloat32();
  const b = got.toFloat32();
  if (a.length !== b.length) throw new Error(`output ${name}: ${a.length} elements from onnxruntime, ${b.length} from TFLite`);
  let diff = 0;
  let scale = 0;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return { name, relative: diff / Math.max(scale, 1e-12), absolute: diff, cosine: na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb) };
}

/** Exports `model`, runs it on the TFLite interpreter and on onnxruntime, and compares every output. */
export async function exportAndCompare(model: Model, options: TfliteExportOptions = {}, input?: Tensor): Promise<Exported> {
  const { tflite, report } = await exportTflite(model, options);
  const bytes = writeTflite(tflite);
  const inputValue = model.graph.inputs.filter((v) => !v.initializer)[0];
  const dims = staticShape(inputValue);
  const x = input ?? imageInput(dims);
  const session = await nodeBackend().createSession(model);
  const runner = await loadTflite(bytes, { name: 'exported.tflite' });
  try {
    const ref = await session.run({ [inputValue.name]: x });
    const nhwc = options.io === 'nhwc';
    const feed = nhwc && dims.length === 4 ? transposeTensor(x, [0, 2, 3, 1]) : x;
    const got = await runner.run({ [inputValue.name]: feed });
    const outputs = Object.entries(ref).map(([name, r]) => {
      let o = got[name];
      if (!o) throw new Error(`TFLite gave no output named ${name} (it gave ${Object.keys(got).join(', ')})`);
      if (nhwc && r.dims.length === 4) o = transposeTensor(o, [0, 3, 1, 2]);
      return agreement(name, r, o);
    });
    return { tflite, report, bytes, outputs };
  } finally {
    runner.dispose();
    await session.release();
  }
}

export function weights(rng: Random, dims: number[], scale = 0.3): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return Tensor.from(
    'float32',
    dims,
    Float32Array.from({ length: n }, () => rng.normal() * scale),
  );
}

/** A conv net touching every image lowering; outputs a feature map and class probabilities. */
export function visionNet(seed = 7): Model {
  const rng = new Random(seed);
  const b = new ModelBuilder({ opset: 17, name: 'vision' });
  const conv = (name: string, x: Value, cin: number, cout: number, k: number, attrs: Record<string, number | number[]> = {}) => {
    const group = (attrs.group as number | undefined) ?? 1;
    const w = b.constant(`${name}_w`, weights(rng, [cout, cin / group, k, k], 0.4));
    const bias = b.constant(`${name}_b`, weights(rng, [cout], 0.1));
    return b.op('Conv', [x, w, bias], { kernel_shape: [k, k], ...attrs }, { name });
  };
  const x = b.input('image', 'float32', [1, 3, 16, 16]);
  const h = b.op('Relu', [conv('stem', x, 3, 8, 3, { pads: [1, 1, 1, 1] })]);
  const dw = b.op('Clip', [
    conv('dw', h, 8, 8, 3, { group: 8, strides: [2, 2], pads: [1, 1, 1, 1] }),
    b.floats('zero', [], [0]),
    b.floats('six', [], [6]),
  ]);
  const pw = conv('pw', dw, 8, 8, 1);
  const res = b.op('Relu', [b.op('Add', [pw, dw])]);
  const grouped = conv('grouped', res, 8, 8, 3, { group: 2, pads: [1, 1, 1, 1] });
  const gate = b.op('Sigmoid', [conv('se', b.op('GlobalAveragePool', [grouped]), 8, 8, 1)]);
  const hs = b.op('HardSwish', [b.op('Mul', [grouped, gate])]);
  const mp = b.op('MaxPool', [hs], { kernel_shape: [2, 2], strides: [2, 2] });
  const ap = b.op('AveragePool', [hs], { kernel_shape: [3, 3], strides: [2, 2], pads: [0, 0, 1, 1] });
  const cat = b.op('Concat', [mp, ap], { axis: 1 });
  const sizes = b.ints('sizes', [1, 16, 8, 8]);
  const up = b.op('Resize', [cat, null, null, sizes], {
    mode: 'nearest',
    coordinate_transformation_mode: 'asymmetric',
    nearest_mode: 'floor',
  });
  const bl = b.op('Resize', [cat, null, null, sizes], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' });
  const tw = b.constant('tconv_w', weights(rng, [16, 4, 2, 2], 0.3));
  const tc = b.op('ConvTranspose', [b.op('Add', [up, bl]), tw, b.constant('tconv_b', weights(rng, [4], 0.1))], {
    kernel_shape: [2, 2],
    strides: [2, 2],
  });
  const padded = b.op('Pad', [tc, b.ints('pads', [0, 0, 1, 2, 0, 0, 2, 1])]);
  const lr = b.op('LeakyRelu', [padded], { alpha: 0.1 });
  const pr = b.op('PRelu', [lr, b.constant('slope', weights(rng, [4, 1, 1], 0.5))]);
  b.output(b.op('HardSigmoid', [pr], { alpha: 0.25, beta: 0.5 }), 'map');
  // Flatten of a 4×4 NHWC map into a dense layer (weights permuted, no TRANSPOSE) + a GAP branch.
  const flat = b.op('Flatten', [mp], { axis: 1 });
  const fc1 = b.op('Gemm', [flat, b.constant('fc1_w', weights(rng, [5, 128], 0.1)), b.constant('fc1_b', weights(rng, [5], 0.1))], {
    transB: 1,
  });
  const gap = b.op('Flatten', [b.op('GlobalAveragePool', [cat])], { axis: 1 });
  const fc2 = b.op('MatMul', [gap, b.constant('fc2_w', weights(rng, [16, 5], 0.3))]);
  b.output(b.op('Softmax', [b.op('Add', [fc1, fc2])], { axis: -1 }), 'probs');
  return b.build();
}
