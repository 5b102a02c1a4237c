/**
 * The optimizer on real pretrained models (PaddleOCR detection, recognition, orientation):
 * outputs stay equal on onnxruntime, and no more nodes are left than onnxruntime's own offline
 * optimization at 'basic' leaves.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { optimizeModel } from '../../src/pipeline/optimize.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { OCR_MODELS, tmpDir } from '../helpers.js';

const MODELS = ['ch_PP-OCRv4_det_infer.onnx', 'ch_PP-OCRv4_rec_infer.onnx', 'ch_ppocr_mobile_v2.0_cls_infer.onnx'];

async function ortBasicNodes(path: string): Promise<number> {
  const out = join(tmpDir(), 'ort-basic.onnx');
  const s = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'basic', optimizedModelFilePath: out, logSeverityLevel: 3 });
  await s.release();
  return [...readOnnx(readFileSync(out)).graph.allNodes()].length;
}

describe('optimize on PaddleOCR models', () => {
  for (const file of MODELS) {
    const path = join(OCR_MODELS, file);
    it(`${file}: equal outputs, no more nodes than onnxruntime basic; fewer still with --opset 17`, async () => {
      const model = readOnnx(readFileSync(path));
      const report = await optimizeModel(model, { verifyWith: nodeBackend() });
      assert.equal(report.verify.checked, true);
      const ortBasic = await ortBasicNodes(path);
      assert.ok(report.nodesAfter <= ortBasic, `${report.nodesAfter} nodes left, onnxruntime basic leaves ${ortBasic}`);
      const upgraded = await optimizeModel(readOnnx(readFileSync(path)), { verifyWith: nodeBackend(), opset: 17 });
      assert.equal(upgraded.verify.checked, true);
      assert.ok(upgraded.nodesAfter < report.nodesAfter, `--opset 17 leaves ${upgraded.nodesAfter}, without ${report.nodesAfter}`);
    });
  }
});
