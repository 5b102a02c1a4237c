/**
 * Bad input gets one clear line naming the problem, exit code 2, no stack trace, and nothing
 * written.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { serializeNpy } from '../../src/data/npy.js';
import { readModel } from '../../src/formats/index.js';
import { onnx } from '../../src/formats/onnx/schema.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { Random } from '../../src/util/random.js';
import { type CliResult, cli, listFiles, randomTensor, smallConvNet, tmpDir } from '../helpers.js';

function expectBadInput(r: CliResult, pattern: RegExp): void {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.ok(lines.length <= 2, `at most the message and a hint:\n${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

/** A folder holding `m.onnx` made from `bytes`; returns the folder and path. */
function fixture(bytes: Uint8Array): { dir: string; path: string } {
  const dir = tmpDir();
  const path = join(dir, 'm.onnx');
  writeFileSync(path, bytes);
  return { dir, path };
}

const good = (): Uint8Array => writeOnnx(smallConvNet()).model;

/** Runs inspect, convert and run on a broken file: all exit 2 and write nothing. */
function allCommandsRefuse(bytes: Uint8Array, pattern: RegExp): void {
  const { dir, path } = fixture(bytes);
  expectBadInput(cli(['inspect', path]), pattern);
  expectBadInput(cli(['convert', path, '-o', join(dir, 'out.onnx')]), pattern);
  expectBadInput(cli(['run', path, '--random']), pattern);
  assert.deepEqual(listFiles(dir), ['m.onnx']);
}

describe('bad input', () => {
  it('a truncated file', () => {
    allCommandsRefuse(good().subarray(0, 300), /m\.onnx: not a readable ONNX file .*truncated/);
  });

  it('random bytes', () => {
    const rng = new Random(5);
    allCommandsRefuse(
      Uint8Array.from({ length: 2000 }, () => rng.int(0, 256)),
      /m\.onnx: not a model file mobilize recognises/,
    );
  });

  it('a bit-flipped model', () => {
    // Flip bits until the model no longer reads: a corrupted length or tag.
    const rng = new Random(11);
    let bytes = good();
    for (;;) {
      const flipped = Uint8Array.from(bytes);
      flipped[rng.int(0, 200)] ^= 1 << rng.int(0, 8);
      try {
        readModel(flipped);
        bytes = flipped;
      } catch {
        bytes = flipped;
        break;
      }
    }
    allCommandsRefuse(bytes, /m\.onnx: /);
  });

  it('an op onnxruntime cannot run', () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [2]);
    b.output(b.op('Frobnicate', [x], {}, { domain: 'com.example', name: 'frob' }), 'y', { kind: 'tensor', dtype: 'float32', shape: [2] });
    const { path } = fixture(writeOnnx(b.build()).model);
    expectBadInput(cli(['run', path, '--random']), /onnxruntime cannot load the model: .*Frobnicate/);
  });

  it('a graph with a cycle', () => {
    const p = onnx.ModelProto.decode(good());
    p.graph!.node![1].input = ['fc_out'];
    p.graph!.node![4].output = ['fc_out'];
    p.graph!.output![0].name = 'fc_out';
    allCommandsRefuse(onnx.ModelProto.encode(p).finish(), /m\.onnx: the graph has a cycle through Relu node "relu"/);
  });

  it('a node reading a value nothing defines', () => {
    const p = onnx.ModelProto.decode(good());
    p.graph!.node![2].input = ['ghost'];
    allCommandsRefuse(
      onnx.ModelProto.encode(p).finish(),
      /m\.onnx: "ghost" \(input of GlobalAveragePool node "gap"\) is not defined by any node, input or initializer/,
    );
  });

  it('a wrong --input-shape', () => {
    const { path } = fixture(good());
    expectBadInput(
      cli(['inspect', path, '--input-shape', 'x:1x3x8']),
      /--input-shape x:1x3x8 has rank 3, but the model declares \[N,3,8,8\]/,
    );
    expectBadInput(cli(['inspect', path, '--input-shape', 'y:1x3x8x8']), /--input-shape names "y", but the model's inputs are: x/);
    expectBadInput(cli(['run', path, '--random', '--input-shape', 'x:1x4x8x8']), /dim 1 is fixed to 3/);
    expectBadInput(cli(['inspect', path, '--input-shape', 'x:1by3']), /expected name:1x3x224x224/);
  });

  it('a missing file, and a folder given as a file', () => {
    expectBadInput(cli(['inspect', '/no/such/model.onnx']), /\/no\/such\/model\.onnx: no such model file/);
    expectBadInput(cli(['inspect', tmpDir()]), /is a folder, not a model file/);
  });

  it('an unknown flag, a missing argument, a surplus argument', () => {
    expectBadInput(cli(['inspect', 'm.onnx', '--frobnicate']), /unknown option '--frobnicate'/);
    expectBadInput(cli(['convert', 'm.onnx']), /required option '-o, --output <file>' not specified/);
    expectBadInput(cli(['inspect']), /missing required argument 'model'/);
    expectBadInput(cli(['inspect', 'a.onnx', 'b.onnx']), /too many arguments/);
    expectBadInput(cli(['frobnicate']), /unknown command 'frobnicate'/);
  });

  it('an output that would overwrite the input', () => {
    const { dir, path } = fixture(good());
    const before = readFileSync(path);
    expectBadInput(cli(['convert', path, '-o', path]), /would overwrite the input/);
    expectBadInput(cli(['convert', path, '-o', join(dir, '.', 'm.onnx')]), /would overwrite the input/);
    assert.deepEqual(readFileSync(path), before);
    assert.deepEqual(listFiles(dir), ['m.onnx']);
  });

  it('an output folder that does not exist', () => {
    const { dir, path } = fixture(good());
    expectBadInput(cli(['convert', path, '-o', join(dir, 'nope', 'out.onnx')]), /does not exist/);
    assert.deepEqual(listFiles(dir), ['m.onnx']);
  });

  it('run without inputs, with an input of the wrong shape or dtype, with a bad seed', () => {
    const { dir, path } = fixture(good());
    expectBadInput(cli(['run', path]), /give inputs with --input name=file\.npy, or --random/);
    writeFileSync(join(dir, 'x.npy'), serializeNpy(randomTensor([1, 3, 4, 4])));
    expectBadInput(
      cli(['run', path, '--input', `x=${join(dir, 'x.npy')}`]),
      /input "x" must have shape float32\[N,3,8,8\], got \[1,3,4,4\]/,
    );
    writeFileSync(join(dir, 'y.npy'), serializeNpy(randomTensor([1, 3, 8, 8])));
    expectBadInput(cli(['run', path, '--input', `y=${join(dir, 'y.npy')}`]), /the model has no input "y"/);
    writeFileSync(join(dir, 'bad.npy'), new Uint8Array(30));
    expectBadInput(cli(['run', path, '--input', `x=${join(dir, 'bad.npy')}`]), /bad\.npy: not a \.npy file/);
    expectBadInput(cli(['run', path, '--random', '--seed', 'abc']), /--seed abc: expected a whole number/);
  });
});
