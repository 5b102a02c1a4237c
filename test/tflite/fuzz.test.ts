/**
 * Hostile .tflite files: truncations, byte flips and corrupted offsets of real and built models.
 * Every outcome must be a model or one bad-input line (exit code 2) — never another exception,
 * a hang or a huge allocation — for the reader and for the importer behind `readModel`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Builder, ByteBuffer } from 'flatbuffers';
import { isMobilizeError } from '../../src/errors.js';
import { readModel } from '../../src/formats/index.js';
import * as tfl from '../../src/formats/tflite/generated/index.js';
import { readTflite } from '../../src/formats/tflite/read.js';
import { writeTflite } from '../../src/formats/tflite/write.js';
import { FACE_SPARSE, fileBytes, floatConvNet, int8ConvNet, SELFIE } from './import-fixtures.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const NASTY = [0, 1, -1, 0x7fffffff, -0x80000000, 0x10000, 0xffff, 4, 8, 16];

/** One mutation of `bytes`: a truncation, a few flipped bytes, or a 32-bit word set to a nasty value. */
function mutate(bytes: Uint8Array, random: () => number): { data: Uint8Array; what: string } {
  const kind = Math.floor(random() * 3);
  if (kind === 0) {
    const at = Math.floor(random() * bytes.length);
    return { data: bytes.slice(0, at), what: `truncated at ${at}` };
  }
  const data = bytes.slice();
  const view = new DataView(data.buffer);
  if (kind === 1) {
    const flips = 1 + Math.floor(random() * 8);
    for (let i = 0; i < flips; i++) data[Math.floor(random() * data.length)] ^= 1 << Math.floor(random() * 8);
    return { data, what: `${flips} byte flips` };
  }
  // Offsets, vector lengths and indices are 32-bit words in the table area (before the big payloads).
  const at = Math.floor(random() * Math.min(data.length - 4, 1 << 16)) & ~3;
  const value = random() < 0.7 ? NASTY[Math.floor(random() * NASTY.length)] : Math.floor(random() * 2 ** 32) | 0;
  view.setInt32(at, value, true);
  return { data, what: `word at ${at} set to ${value}` };
}

function expectModelOrBadInput(run: () => unknown, what: string): 'ok' | 'refused' {
  try {
    run();
    return 'ok';
  } catch (e) {
    if (!isMobilizeError(e)) throw new Error(`${what}: ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.exitCode, 2, what);
    assert.doesNotMatch(e.message, /\n/, what);
    return 'refused';
  }
}

describe('TFLite reader and importer under hostile bytes', () => {
  it('takes 3000 mutations of small built models: every result is a model or one bad-input line', () => {
    const seeds = [writeTflite(floatConvNet()), writeTflite(int8ConvNet())];
    const random = rng(1234);
    const tally = { ok: 0, refused: 0 };
    const start = performance.now();
    for (let i = 0; i < 3000; i++) {
      const { data, what } = mutate(seeds[i % seeds.length], random);
      tally[expectModelOrBadInput(() => readModel(data, { source: 'fuzz.tflite' }), `case ${i} (${what})`)]++;
    }
    const seconds = (performance.now() - start) / 1000;
    assert.ok(tally.refused > 1000 && tally.ok > 50, JSON.stringify(tally));
    assert.ok(seconds < 60, `${seconds} s`);
  });

  it('takes 300 mutations of MediaPipe models (sparse tensors, custom ops) through the reader', () => {
    const seeds = [fileBytes(FACE_SPARSE), fileBytes(SELFIE)];
    const random = rng(99);
    for (let i = 0; i < 300; i++) {
      const { data, what } = mutate(seeds[i % 2], random);
      expectModelOrBadInput(() => readTflite(data, { source: 'fuzz.tflite' }), `case ${i} (${what})`);
    }
  });

  it('refuses, quickly, a small file whose tables all share one huge vector', () => {
    // 20 000 operators pointing at one operator table whose input list has 20 000 entries: read
    // naively that is 4·10⁸ reads from a 160 KB file; the read budget stops it.
    const b = new Builder(1 << 20);
    const inputs = tfl.Operator.createInputsVector(b, new Array(20_000).fill(-1));
    const op = tfl.Operator.createOperator(b, 0, inputs, 0, 0, 0, 0, 0, 0, 0, 0n, 0n, 0, 0);
    const ops = tfl.SubGraph.createOperatorsVector(b, new Array(20_000).fill(op));
    tfl.SubGraph.startSubGraph(b);
    tfl.SubGraph.addOperators(b, ops);
    const sub = tfl.SubGraph.endSubGraph(b);
    const subs = tfl.Model.createSubgraphsVector(b, [sub]);
    tfl.Model.startModel(b);
    tfl.Model.addVersion(b, 3);
    tfl.Model.addSubgraphs(b, subs);
    tfl.Model.finishModelBuffer(b, tfl.Model.endModel(b));
    const bytes = b.asUint8Array();
    const start = performance.now();
    assert.throws(
      () => readTflite(bytes, { source: 'shared.tflite' }),
      /shared\.tflite: not a readable TFLite model: the file makes the reader revisit the same data too often/,
    );
    assert.ok(performance.now() - start < 5000);
  });

  it('names the fault of classic hostile files', () => {
    const good = writeTflite(floatConvNet());
    const cases: Array<[string, (m: ReturnType<typeof readTflite>) => void, RegExp]> = [
      ['out-of-range tensor', (m) => (m.subgraphs[0].operators[0].inputs[0] = 77), /operator 0 \(CONV_2D\) refers to tensor 77/],
      ['out-of-range opcode', (m) => (m.subgraphs[0].operators[2].opcodeIndex = 40), /operator 2 uses opcode 40/],
      [
        'wrong quantized_dimension',
        (m) => {
          m.subgraphs[0].tensors[1].quantization = { scale: new Float32Array(4).fill(0.1), zeroPoint: [0, 0, 0, 0], quantizedDimension: 6 };
        },
        /quantized_dimension 6, outside its rank 4/,
      ],
      ['short constant', (m) => (m.subgraphs[0].tensors[1].shape = [4, 3, 3, 4]), /needs 576 bytes of data, but its buffer .* holds 432/],
    ];
    for (const [what, edit, pattern] of cases) {
      const m = readTflite(good);
      edit(m);
      assert.throws(
        () => readTflite(writeTflite(m), { source: 'bad.tflite' }),
        (e: unknown) => isMobilizeError(e) && e.exitCode === 2 && e.message.startsWith('bad.tflite: ') && pattern.test(e.message),
        what,
      );
    }
    // The writer refuses a buffer index out of range, so patch one into a written file.
    const patched = good.slice();
    const root = tfl.Model.getRootAsModel(new ByteBuffer(patched));
    const tensor = root.subgraphs(0)!.tensors(1)!;
    const field = tensor.bb!.__offset(tensor.bb_pos, 8);
    new DataView(patched.buffer).setUint32(tensor.bb_pos + field, 999, true);
    assert.throws(
      () => readTflite(patched, { source: 'bad.tflite' }),
      /bad\.tflite: tensor 1 "conv\/filter" refers to buffer 999, but the file has \d+ buffers/,
    );
    // A root offset outside the file.
    const cut = good.slice();
    new DataView(cut.buffer).setUint32(0, good.length + 64, true);
    assert.throws(
      () => readTflite(cut, { source: 'cut.tflite' }),
      /^MobilizeError: cut\.tflite: not a readable TFLite model: an offset points outside the file/,
    );
  });
});
