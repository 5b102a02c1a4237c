import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectFormat } from '../../src/formats/detect.js';
import { readModel } from '../../src/formats/index.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { smallConvNet } from '../helpers.js';

describe('format detection by signature bytes', () => {
  const onnxBytes = writeOnnx(smallConvNet()).model;

  it('recognises ONNX whatever the file is called', () => {
    assert.equal(detectFormat(onnxBytes), 'onnx');
  });

  it('recognises TFLite, NCNN and Core ML signatures', () => {
    const tfl = new Uint8Array(16);
    tfl.set([0x54, 0x46, 0x4c, 0x33], 4);
    assert.equal(detectFormat(tfl), 'tflite');
    assert.equal(detectFormat(new TextEncoder().encode('7767517\n3 3\nInput data 0 1 data\n')), 'ncnn');
    // Core ML: specificationVersion, description, then a model type field ≥ 200.
    assert.equal(detectFormat(Uint8Array.from([0x08, 0x04, 0x12, 0x00, 0xc2, 0x0c, 0x00])), 'coreml');
  });

  it('refuses random bytes, text and empty files', () => {
    let seed = 7;
    const random = Uint8Array.from({ length: 4096 }, () => (seed = (seed * 1103515245 + 12345) % 2147483648) & 0xff);
    assert.equal(detectFormat(random), undefined);
    assert.equal(detectFormat(new TextEncoder().encode('hello, world')), undefined);
    assert.throws(() => readModel(new Uint8Array(0), { source: 'e.onnx' }), /e\.onnx: the file is empty/);
    assert.throws(() => readModel(random, { source: 'r.bin' }), /not a model file mobilize recognises/);
  });

  it('reads bytes marked TFL3 as TFLite, whatever the file is called', () => {
    const tfl = new Uint8Array(16);
    tfl.set([0x54, 0x46, 0x4c, 0x33], 4);
    assert.throws(() => readModel(tfl, { source: 'm.onnx' }), /m\.onnx: .*not a valid TFLite model/);
  });
});
