/**
 * `mobilize quantize` with the quality flags as a user runs them, and the combinations it must
 * refuse in one line with exit code 2, writing nothing.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { zipSync } from 'fflate';
import { serializeNpy } from '../../src/data/npy.js';
import { saveModel } from '../../src/io/files.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { type CliResult, cli, listFiles, tmpDir } from '../helpers.js';
import { balanced, fragileNet, selfLabelled, varied } from './quality-helpers.js';

const backend = nodeBackend();

/** The fragile classifier, calibration inputs (.npy) and labelled evaluation data (.npz). */
async function fixture(): Promise<{ dir: string; model: string; calib: string; labelled: string; unlabelled: string }> {
  const dir = tmpDir();
  const float = await balanced(fragileNet(), varied([200, 3, 8, 8], 20), backend);
  const model = join(dir, 'm.onnx');
  saveModel(float, model);
  const calib = join(dir, 'calib.npy');
  writeFileSync(calib, serializeNpy(varied([32, 3, 8, 8], 21)));
  const data = await selfLabelled(float, varied([200, 3, 8, 8], 22), backend);
  const all = await data.batch(Array.from({ length: data.size }, (_, i) => i));
  const labelled = join(dir, 'eval.npz');
  writeFileSync(labelled, zipSync({ 'x.npy': serializeNpy(all.input), 'y.npy': serializeNpy(all.label as NonNullable<typeof all.label>) }));
  const unlabelled = join(dir, 'eval.npy');
  writeFileSync(unlabelled, serializeNpy(all.input));
  return { dir, model, calib, labelled, unlabelled };
}

function expectBadInput(r: CliResult, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code (stdout: ${r.stdout}, stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line:\n${r.stderr}`);
  assert.match(lines[0], pattern);
}

describe('mobilize quantize: quality flags', () => {
  it('--max-drop with --eval keeps the fragile layer float; --sensitivity prints the ranking', async () => {
    const { dir, model, calib, labelled } = await fixture();
    const out = join(dir, 'q.onnx');
    const r = cli([
      'quantize',
      model,
      '-o',
      out,
      '--calib',
      calib,
      '--equalize',
      '--bias-correction',
      '--sensitivity',
      '--max-drop',
      '3',
      '--eval',
      labelled,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /sensitivity \(each layer alone quantized, top-1 drop and output SQNR on 200 samples\), most sensitive first:\n\s+layer\s+op\s+drop\s+SQNR\n\s+convB\s+Conv/,
    );
    assert.match(r.stdout, /fallback: met with 1 layers float \(drop [\d.]+ pt/);
    assert.match(r.stdout, /kept float by fallback: convB\n/);
    assert.match(r.stdout, /kept float: Conv "convB" \(excluded\)/);
    assert.match(r.stdout, /bias correction \(empirical, 16 samples\)/);
    assert.match(
      r.stdout,
      /against float on .*eval\.npz \(200 samples\): output SQNR [\d.]+ dB, top-1 100\.00% → [\d.]+% \(drop [\d.-]+ pt\)/,
    );

    const j = cli(['quantize', model, '-o', join(dir, 'q2.onnx'), '--calib', calib, '--min-sqnr', '20', '--eval', labelled, '--json']);
    assert.equal(j.code, 0, j.stderr);
    const report = JSON.parse(j.stdout);
    assert.deepEqual(report.quality.fallback.float.slice(0, 1), ['convB']);
    assert.ok(report.quality.score.final.sqnrDb >= 20, `SQNR ${report.quality.score.final.sqnrDb}`);
    assert.equal(report.quality.sensitivity.layers[0].layer, 'convB');
    assert.deepEqual(listFiles(dir), ['calib.npy', 'eval.npy', 'eval.npz', 'm.onnx', 'q.onnx', 'q2.onnx']);
  });

  it('--size-budget writes a mixed-precision model within the budget', async () => {
    const { dir, model, calib } = await fixture();
    const r = cli(['quantize', model, '-o', join(dir, 'q.onnx'), '--calib', calib, '--size-budget', '0.6', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { quality, weightBytes } = JSON.parse(r.stdout);
    assert.ok(quality.mixed.met);
    assert.ok(weightBytes.after <= quality.mixed.budgetBytes, `${weightBytes.after} > ${quality.mixed.budgetBytes}`);
    assert.equal(quality.mixed.layers.length, 4);
  });

  const bad: Array<[string, string[], RegExp]> = [
    ['--max-drop without --eval', ['--max-drop', '0.5'], /--max-drop measures top-1 accuracy: give labelled data with --eval/],
    [
      '--max-drop with unlabelled --eval',
      ['--max-drop', '0.5', '--eval', 'EVAL_NPY'],
      /--max-drop measures top-1 accuracy, but --eval .*eval\.npy has no labels: use --min-sqnr/,
    ],
    ['a negative --max-drop', ['--max-drop', '-1', '--eval', 'EVAL_NPZ'], /--max-drop -1: expected top-1 points ≥ 0/],
    [
      'a negative --size-budget',
      ['--size-budget', '-0.3'],
      /--size-budget -0.3: expected a fraction of the float32 weight bytes in \(0, 1\]/,
    ],
    ['a --size-budget above 1', ['--size-budget', '1.5'], /--size-budget 1.5: expected a fraction/],
    ['a --size-budget that is not a number', ['--size-budget', 'small'], /--size-budget small: expected a number/],
    [
      '--size-budget with --min-sqnr',
      ['--size-budget', '0.3', '--min-sqnr', '20'],
      /--size-budget chooses precisions under a size; --max-drop\/--min-sqnr/,
    ],
    ['--min-sqnr that is not a number', ['--min-sqnr', 'high'], /--min-sqnr high: expected a number/],
    [
      'a --size-budget below what every layer in int4 takes',
      ['--size-budget', '0.05'],
      /--size-budget 0.05: with every layer's weights in int4 the model still keeps 0\.\d+ of its float32 weight bytes .*: give --size-budget 0\.\d+ or more/,
    ],
    ['an unknown --equalize mode', ['--equalize', 'both'], /--equalize both: expected weights or activations/],
    ['an unknown --bias-correction mode', ['--bias-correction', 'magic'], /--bias-correction magic: expected empirical or weights/],
    ['--eval read by nothing', ['--eval', 'EVAL_NPZ'], /--eval is read by --sensitivity, --max-drop/],
    ['--eval-size 0', ['--sensitivity', '--eval-size', '0'], /--eval-size/],
    [
      'a quality flag with a weight-only scheme',
      ['--scheme', 'fp16', '--sensitivity'],
      /--sensitivity: for the static schemes \(uint8, int8\) only, not --scheme fp16/,
    ],
  ];
  // Refusals write nothing, so they share one folder.
  let shared: ReturnType<typeof fixture> | undefined;
  for (const [what, args, pattern] of bad) {
    it(`refuses ${what}: one line, exit 2, nothing written`, async () => {
      shared ??= fixture();
      const { dir, model, calib, labelled, unlabelled } = await shared;
      const a = args.map((x) => (x === 'EVAL_NPZ' ? labelled : x === 'EVAL_NPY' ? unlabelled : x));
      expectBadInput(cli(['quantize', model, '-o', join(dir, 'q.onnx'), '--calib', calib, ...a]), pattern);
      assert.deepEqual(listFiles(dir), ['calib.npy', 'eval.npy', 'eval.npz', 'm.onnx']);
    });
  }
});
