/**
 * Small TFLite models built in code with the codec (no file from outside the repository): a
 * float conv net and an int8 one quantized per TFLite's spec (int8 per-channel weights with zero
 * point 0, int32 biases at input scale × weight scale, per-tensor int8 activations).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Activation,
  Builtin,
  emptyModel,
  Padding,
  TensorType,
  type TfliteModel,
  type TfliteOperator,
  type TfliteTensor,
} from '../../src/formats/tflite/model.js';
import { ROOT } from '../helpers.js';

export const MEDIAPIPE = join(ROOT, 'node_modules/@mediapipe');
export const FACE = join(MEDIAPIPE, 'face_detection/face_detection_short_range.tflite');
export const FACE_SPARSE = join(MEDIAPIPE, 'face_detection/face_detection_full_range_sparse.tflite');
export const HANDS = join(MEDIAPIPE, 'hands/hand_landmark_lite.tflite');
export const SELFIE = join(MEDIAPIPE, 'selfie_segmentation/selfie_segmentation.tflite');

export function fileBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** Deterministic pseudo-random numbers in [-1, 1). */
export function noise(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

function bytesOf(a: Float32Array | Int32Array | Int8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

class Builder {
  readonly m: TfliteModel = emptyModel('mobilize test');
  readonly tensors: TfliteTensor[] = [];
  readonly ops: TfliteOperator[] = [];

  tensor(
    name: string,
    shape: number[],
    type: TfliteTensor['type'],
    data?: Uint8Array,
    quantization?: TfliteTensor['quantization'],
  ): number {
    let buffer = 0;
    if (data) {
      buffer = this.m.buffers.length;
      this.m.buffers.push(data);
    }
    const t: TfliteTensor = { name, shape, type, buffer };
    if (quantization) t.quantization = quantization;
    this.tensors.push(t);
    return this.tensors.length - 1;
  }

  op(code: number, inputs: number[], outputs: number[], options?: TfliteOperator['options']): void {
    let index = this.m.operatorCodes.findIndex((c) => c.builtinCode === code);
    if (index < 0) {
      index = this.m.operatorCodes.length;
      this.m.operatorCodes.push({ builtinCode: code, version: 1 });
    }
    const op: TfliteOperator = { opcodeIndex: index, inputs, outputs };
    if (options) op.options = options;
    this.ops.push(op);
  }

  finish(inputs: number[], outputs: number[]): TfliteModel {
    this.m.subgraphs.push({ tensors: this.tensors, inputs, outputs, operators: this.ops, name: 'main' });
    this.m.signatureDefs.push({
      signatureKey: 'serving_default',
      subgraphIndex: 0,
      inputs: inputs.map((i) => ({ name: this.tensors[i].name, tensorIndex: i })),
      outputs: outputs.map((i) => ({ name: this.tensors[i].name, tensorIndex: i })),
    });
    return this.m;
  }
}

/**
 * Float: image [1,8,8,3] → CONV_2D 3×3 stride 2 SAME (+ReLU) → DEPTHWISE 3×3 (+ReLU6) →
 * AVERAGE_POOL 2×2 → RESHAPE [1,16] → FULLY_CONNECTED 10 → SOFTMAX, and a second output
 * ADD(conv, conv) → MAX_POOL VALID → MEAN over H,W.
 */
export function floatConvNet(seed = 3): TfliteModel {
  const b = new Builder();
  const F = TensorType.FLOAT32;
  const x = b.tensor('image', [1, 8, 8, 3], F);
  const w1 = b.tensor('conv/filter', [4, 3, 3, 3], F, bytesOf(noise(108, seed)));
  const b1 = b.tensor('conv/bias', [4], F, bytesOf(noise(4, seed + 1)));
  const c1 = b.tensor('conv', [1, 4, 4, 4], F);
  b.op(Builtin.CONV_2D, [x, w1, b1], [c1], {
    type: 'Conv2DOptions',
    fields: { padding: Padding.SAME, stride_w: 2, stride_h: 2, fused_activation_function: Activation.RELU },
  });
  const w2 = b.tensor('dw/filter', [1, 3, 3, 4], F, bytesOf(noise(36, seed + 2)));
  const b2 = b.tensor('dw/bias', [4], F, bytesOf(noise(4, seed + 3)));
  const c2 = b.tensor('dw', [1, 4, 4, 4], F);
  b.op(Builtin.DEPTHWISE_CONV_2D, [c1, w2, b2], [c2], {
    type: 'DepthwiseConv2DOptions',
    fields: { padding: Padding.SAME, stride_w: 1, stride_h: 1, depth_multiplier: 1, fused_activation_function: Activation.RELU6 },
  });
  const p = b.tensor('pool', [1, 2, 2, 4], F);
  b.op(Builtin.AVERAGE_POOL_2D, [c2], [p], {
    type: 'Pool2DOptions',
    fields: { padding: Padding.VALID, stride_w: 2, stride_h: 2, filter_width: 2, filter_height: 2 },
  });
  const shape = b.tensor('flat/shape', [2], TensorType.INT32, bytesOf(Int32Array.from([1, 16])));
  const flat = b.tensor('flat', [1, 16], F);
  b.op(Builtin.RESHAPE, [p, shape], [flat], { type: 'ReshapeOptions', fields: { new_shape: [1, 16] } });
  const w3 = b.tensor('fc/weights', [10, 16], F, bytesOf(noise(160, seed + 4)));
  const b3 = b.tensor('fc/bias', [10], F, bytesOf(noise(10, seed + 5)));
  const logits = b.tensor('logits', [1, 10], F);
  b.op(Builtin.FULLY_CONNECTED, [flat, w3, b3], [logits], { type: 'FullyConnectedOptions', fields: {} });
  const probs = b.tensor('probs', [1, 10], F);
  b.op(Builtin.SOFTMAX, [logits], [probs], { type: 'SoftmaxOptions', fields: { beta: 1 } });
  const sum = b.tensor('sum', [1, 4, 4, 4], F);
  b.op(Builtin.ADD, [c1, c2], [sum], { type: 'AddOptions', fields: { fused_activation_function: Activation.NONE } });
  const mp = b.tensor('maxpool', [1, 2, 2, 4], F);
  b.op(Builtin.MAX_POOL_2D, [sum], [mp], {
    type: 'Pool2DOptions',
    fields: { padding: Padding.VALID, stride_w: 2, stride_h: 2, filter_width: 3, filter_height: 3 },
  });
  const axes = b.tensor('mean/axes', [2], TensorType.INT32, bytesOf(Int32Array.from([1, 2])));
  const mean = b.tensor('mean', [1, 4], F);
  b.op(Builtin.MEAN, [mp, axes], [mean], { type: 'ReducerOptions', fields: { keep_dims: false } });
  return b.finish([x], [probs, mean]);
}

function quantizeSymmetric(w: Float32Array, channels: number): { q: Int8Array; scales: Float32Array } {
  const per = w.length / channels;
  const scales = new Float32Array(channels);
  const q = new Int8Array(w.length);
  for (let c = 0; c < channels; c++) {
    let max = 0;
    for (let i = 0; i < per; i++) max = Math.max(max, Math.abs(w[c * per + i]));
    scales[c] = max / 127 || 1;
    for (let i = 0; i < per; i++) q[c * per + i] = Math.round(w[c * per + i] / scales[c]);
  }
  return { q, scales };
}

/**
 * Full-integer int8: image int8 [1,8,8,3] → CONV_2D 3×3 (+ReLU) → DEPTHWISE 3×3 → ADD (+ReLU)
 * → MAX_POOL 2×2 → RESHAPE → FULLY_CONNECTED 5, all int8 with per-tensor activation parameters.
 */
export function int8ConvNet(seed = 5): TfliteModel {
  const b = new Builder();
  const I8 = TensorType.INT8;
  const act = (scale: number, zp: number) => ({ scale: Float32Array.of(scale), zeroPoint: [zp], quantizedDimension: 0 });
  const sIn = 1 / 128;
  const x = b.tensor('image', [1, 8, 8, 3], I8, undefined, act(sIn, 0));
  const conv = quantizeSymmetric(noise(4 * 27, seed), 4);
  const w1 = b.tensor('conv/filter', [4, 3, 3, 3], I8, bytesOf(conv.q), {
    scale: conv.scales,
    zeroPoint: [0, 0, 0, 0],
    quantizedDimension: 0,
  });
  const bias1 = Int32Array.from(noise(4, seed + 1), (v, c) => Math.round(v / (sIn * conv.scales[c])));
  const b1 = b.tensor('conv/bias', [4], TensorType.INT32, bytesOf(bias1), {
    scale: conv.scales.map((s) => s * sIn),
    zeroPoint: [0, 0, 0, 0],
    quantizedDimension: 0,
  });
  const sC1 = 0.02;
  const c1 = b.tensor('conv', [1, 8, 8, 4], I8, undefined, act(sC1, -128));
  b.op(Builtin.CONV_2D, [x, w1, b1], [c1], {
    type: 'Conv2DOptions',
    fields: { padding: Padding.SAME, stride_w: 1, stride_h: 1, fused_activation_function: Activation.RELU },
  });
  const dw = quantizeSymmetric(
    // depthwise filter [1,3,3,4] is quantized along its last axis: transpose to channel-major first.
    (() => {
      const raw = noise(36, seed + 2);
      const byChannel = new Float32Array(36);
      for (let c = 0; c < 4; c++) for (let k = 0; k < 9; k++) byChannel[c * 9 + k] = raw[k * 4 + c];
      return byChannel;
    })(),
    4,
  );
  const dwData = new Int8Array(36);
  for (let c = 0; c < 4; c++) for (let k = 0; k < 9; k++) dwData[k * 4 + c] = dw.q[c * 9 + k];
  const w2 = b.tensor('dw/filter', [1, 3, 3, 4], I8, bytesOf(dwData), { scale: dw.scales, zeroPoint: [0, 0, 0, 0], quantizedDimension: 3 });
  const bias2 = Int32Array.from(noise(4, seed + 3), (v, c) => Math.round((0.1 * v) / (sC1 * dw.scales[c])));
  const b2 = b.tensor('dw/bias', [4], TensorType.INT32, bytesOf(bias2), {
    scale: dw.scales.map((s) => s * sC1),
    zeroPoint: [0, 0, 0, 0],
    quantizedDimension: 0,
  });
  const c2 = b.tensor('dw', [1, 8, 8, 4], I8, undefined, act(0.03, 3));
  b.op(Builtin.DEPTHWISE_CONV_2D, [c1, w2, b2], [c2], {
    type: 'DepthwiseConv2DOptions',
    fields: { padding: Padding.SAME, stride_w: 1, stride_h: 1, depth_multiplier: 1 },
  });
  const sum = b.tensor('sum', [1, 8, 8, 4], I8, undefined, act(0.03, -128));
  b.op(Builtin.ADD, [c1, c2], [sum], { type: 'AddOptions', fields: { fused_activation_function: Activation.RELU } });
  const mp = b.tensor('maxpool', [1, 4, 4, 4], I8, undefined, act(0.03, -128));
  b.op(Builtin.MAX_POOL_2D, [sum], [mp], {
    type: 'Pool2DOptions',
    fields: { padding: Padding.VALID, stride_w: 2, stride_h: 2, filter_width: 2, filter_height: 2 },
  });
  const shape = b.tensor('flat/shape', [2], TensorType.INT32, bytesOf(Int32Array.from([1, 64])));
  const flat = b.tensor('flat', [1, 64], I8, undefined, act(0.03, -128));
  b.op(Builtin.RESHAPE, [mp, shape], [flat], { type: 'ReshapeOptions', fields: {} });
  const fc = quantizeSymmetric(noise(5 * 64, seed + 4), 5);
  const w3 = b.tensor('fc/weights', [5, 64], I8, bytesOf(fc.q), { scale: fc.scales, zeroPoint: [0, 0, 0, 0, 0], quantizedDimension: 0 });
  const bias3 = Int32Array.from(noise(5, seed + 5), (v, c) => Math.round(v / (0.03 * fc.scales[c])));
  const b3 = b.tensor('fc/bias', [5], TensorType.INT32, bytesOf(bias3), {
    scale: fc.scales.map((s) => s * 0.03),
    zeroPoint: [0, 0, 0, 0, 0],
    quantizedDimension: 0,
  });
  const out = b.tensor('logits', [1, 5], I8, undefined, act(0.3, 0));
  b.op(Builtin.FULLY_CONNECTED, [flat, w3, b3], [out], { type: 'FullyConnectedOptions', fields: {} });
  return b.finish([x], [out]);
}
