/** The lowering table: ONNX op type → the function that emits its TFLite operators. */
import type { Lowering } from './common.js';
import { lowerConv, lowerConvTranspose } from './conv.js';
import { ELEMENTWISE } from './elementwise.js';
import { lowerGemm, lowerMatMul } from './linear.js';
import { lowerGlobalPool, lowerPool } from './pool.js';
import { REDUCE_LOWERINGS } from './reduce.js';
import { lowerResize } from './resize.js';
import { SHAPE_LOWERINGS } from './shape.js';

export const LOWERINGS: Readonly<Record<string, Lowering>> = {
  Conv: lowerConv,
  ConvTranspose: lowerConvTranspose,
  MaxPool: lowerPool,
  AveragePool: lowerPool,
  GlobalAveragePool: lowerGlobalPool,
  GlobalMaxPool: lowerGlobalPool,
  Gemm: lowerGemm,
  MatMul: lowerMatMul,
  Resize: lowerResize,
  Upsample: lowerResize,
  ...ELEMENTWISE,
  ...SHAPE_LOWERINGS,
  ...REDUCE_LOWERINGS,
};
