/** The real TFLite interpreter (WASM) as a runner: MediaPipe's models from npm, refusals, hostile bytes, a quiet stdout. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { isMobilizeError } from '../../src/errors.js';
import { Tensor } from '../../src/ir/tensor.js';
import { loadTflite } from '../../src/runtime/tflite.js';
import { Random } from '../../src/util/random.js';
import { ROOT } from '../helpers.js';

const MEDIAPIPE = join(ROOT, 'node_modules/@mediapipe');
const FACE = join(MEDIAPIPE, 'face_detection/face_detection_short_range.tflite');
const HANDS = join(MEDIAPIPE, 'hands/hand_landmark_lite.tflite');
const SELFIE = join(MEDIAPIPE, 'selfie_segmentation/selfie_segmentation.tflite');

function bytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** A smooth image-like input in [-1, 1] (MediaPipe's models take normalised RGB). */
function image(dims: number[], phase: number): Float32Array {
  const n = dims.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.013 + phase));
}

/** Runs a module snippet in a child Node (the test runner itself talks on this process's stdout). */
function childStdout(code: string): { stdout: string; status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { stdout: r.stdout, status: r.status, stderr: r.stderr };
}

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isMobilizeError(e), `expected a MobilizeError, got ${String(e)}`);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, pattern);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
}

describe('TFLite runtime (real interpreter, WASM)', () => {
  it('loads MediaPipe face detection, reports its inputs and outputs, and runs it deterministically', async () => {
    const r = await loadTflite(bytes(FACE), { name: FACE });
    try {
      assert.equal(r.build, 'simd');
      assert.deepEqual(r.inputs, [{ name: 'input', shape: [1, 128, 128, 3], dtype: 'float32' }]);
      assert.deepEqual(
        r.outputs.map((o) => [o.name, o.shape.join('x'), o.dtype]),
        [
          ['regressors', '1x896x16', 'float32'],
          ['classificators', '1x896x1', 'float32'],
        ],
      );
      const a = image([1, 128, 128, 3], 0);
      const first = await r.run({ input: a });
      const again = await r.run({ input: Tensor.from('float32', [1, 128, 128, 3], a) });
      const other = await r.run({ input: image([1, 128, 128, 3], 1.5) });
      assert.deepEqual(first.regressors.dims, [1, 896, 16]);
      const x = first.regressors.data as Float32Array;
      assert.ok(x.every(Number.isFinite));
      assert.deepEqual(again.regressors.data, x, 'the same input gives the same output');
      assert.notDeepEqual(other.regressors.data, x, 'another input gives another output');
      // Outputs are copies: a later run does not change a returned tensor.
      assert.notEqual(first.classificators.data, other.classificators.data);
    } finally {
      r.dispose();
    }
  });

  it('serves several models at once, each with its own tensors', async () => {
    const face = await loadTflite(bytes(FACE));
    const hands = await loadTflite(bytes(HANDS));
    try {
      assert.deepEqual(hands.inputs[0].shape, [1, 224, 224, 3]);
      assert.equal(hands.outputs.length, 4);
      const h = await hands.run({ [hands.inputs[0].name]: image([1, 224, 224, 3], 0.3) });
      const f = await face.run({ input: image([1, 128, 128, 3], 0) });
      const h2 = await hands.run({ [hands.inputs[0].name]: image([1, 224, 224, 3], 0.3) });
      for (const o of hands.outputs) assert.deepEqual(h2[o.name].data, h[o.name].data);
      assert.equal(f.regressors.size, 896 * 16);
    } finally {
      face.dispose();
      hands.dispose();
    }
  });

  it('prints nothing on stdout (the interpreter log is captured)', () => {
    const runtime = pathToFileURL(join(ROOT, 'src/runtime/tflite.ts')).href;
    const r = childStdout(`
      import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
      import { loadTflite } from ${JSON.stringify(runtime)};
      const r = await loadTflite(new Uint8Array(readFileSync(${JSON.stringify(FACE)})));
      const out = await r.run({ input: new Float32Array(128 * 128 * 3) });
      r.dispose();
      let refused = '';
      try { await loadTflite(new Uint8Array(readFileSync(${JSON.stringify(SELFIE)}))); } catch (e) { refused = e.message; }
      process.stderr.write(out.regressors.dims.join('x') + ' ' + refused);
    `);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^1x896x16 .*Convolution2DTransposeBias/);
    assert.equal(r.stdout, '');
  });

  it('names the custom op that the interpreter cannot resolve', async () => {
    await rejectsWith(
      loadTflite(bytes(SELFIE), { name: 'selfie.tflite' }),
      /^selfie\.tflite: .*unresolved custom op: Convolution2DTransposeBias/,
    );
  });

  it('refuses truncated, corrupted and foreign bytes with one line', async () => {
    const face = bytes(FACE);
    await rejectsWith(loadTflite(face.slice(0, 4096), { name: 'cut.tflite' }), /^cut\.tflite: /);
    await rejectsWith(loadTflite(new TextEncoder().encode('{"not":"a model"}'), { name: 'x.json' }), /not a TFLite model/);
    // Flatbuffer offsets past the end: the root table pointer rewritten to point outside the file.
    const bad = face.slice();
    new DataView(bad.buffer).setUint32(0, bad.length + 1024, true);
    await rejectsWith(loadTflite(bad, { name: 'bad.tflite' }), /^bad\.tflite: the TFLite interpreter refuses the model/);
    // The interpreter still serves good models afterwards.
    const r = await loadTflite(face);
    assert.equal((await r.run({ input: image([1, 128, 128, 3], 0) })).regressors.size, 896 * 16);
    r.dispose();
  });

  it('fuzz: mutated files load and run or are refused with a MobilizeError, never a crash', async () => {
    const base = bytes(FACE);
    const rng = new Random(1);
    const outcomes = { ran: 0, refused: 0 };
    for (let i = 0; i < 60; i++) {
      const b = base.slice();
      if (i % 3 === 0) for (let k = 0; k < 4; k++) b[rng.int(0, 4096)] = rng.int(0, 256);
      else if (i % 3 === 1) for (let k = 0; k < 4; k++) b[rng.int(0, b.length)] = rng.int(0, 256);
      else new DataView(b.buffer).setUint32(rng.int(0, 2048) & ~3, rng.int(0, 2 ** 31), true);
      try {
        const r = await loadTflite(b, { name: 'fuzz.tflite' });
        try {
          const input = r.inputs[0];
          await r.run({ [input.name]: new Float32Array(input.shape.reduce((x, y) => x * y, 1)) });
          outcomes.ran++;
        } finally {
          r.dispose();
        }
      } catch (e) {
        assert.ok(isMobilizeError(e), `mutation ${i}: ${String(e)}`);
        outcomes.refused++;
      }
    }
    // Mutations in the header and offsets are refused; many in weight bytes still run.
    assert.ok(outcomes.ran > 0 && outcomes.refused > 0, JSON.stringify(outcomes));
  });

  it('checks feeds: unknown names, missing inputs, wrong shape or type', async () => {
    const r = await loadTflite(bytes(FACE), { name: 'face.tflite' });
    try {
      await rejectsWith(r.run({ image: image([1, 128, 128, 3], 0) }), /has no input "image"; its inputs are: input/);
      await rejectsWith(r.run({}), /no value given for input "input"/);
      await rejectsWith(r.run({ input: Tensor.zeros('float32', [1, 3, 128, 128]) }), /shape \[1,128,128,3\], got \[1,3,128,128\]/);
      await rejectsWith(r.run({ input: Tensor.zeros('int8', [1, 128, 128, 3]) }), /is float32, got int8/);
      await rejectsWith(r.run({ input: new Float32Array(10) }), /takes 49152 float32 values, got 10/);
    } finally {
      r.dispose();
    }
  });
});
