import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { onnx } from '../../src/formats/onnx/schema.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { loadModel, saveModel } from '../../src/io/files.js';
import { listFiles, smallConvNet, tmpDir } from '../helpers.js';

describe('external data', () => {
  it('writes weights to <model>.data and reads them back', () => {
    const dir = tmpDir();
    const path = join(dir, 'm.onnx');
    const saved = saveModel(smallConvNet(), path, { externalData: true, externalMinBytes: 0 });
    assert.ok(saved.externalPath && existsSync(join(dir, 'm.onnx.data')));
    assert.ok(statSync(path).size < 1000, 'weights left the .onnx file');
    const back = loadModel(path);
    const w = back.graph.initializers.find((v) => v.name === 'w')!.initializer!;
    const orig = smallConvNet().graph.initializers.find((v) => v.name === 'w')!.initializer!;
    assert.ok(w.equals(orig));
    const proto = onnx.ModelProto.decode(readFileSync(path));
    const ext = proto.graph!.initializer!.find((t) => t.name === 'w')!;
    assert.equal(ext.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL);
    const offset = Number(ext.externalData!.find((e) => e.key === 'offset')!.value);
    assert.equal(offset % 64, 0);
  });

  function withLocation(location: string): Uint8Array {
    const proto = onnx.ModelProto.decode(writeOnnx(smallConvNet(), { externalData: { location: 'w.bin', minBytes: 0 } }).model);
    for (const t of proto.graph!.initializer!) {
      for (const e of t.externalData ?? []) if (e.key === 'location') e.value = location;
    }
    return onnx.ModelProto.encode(proto).finish();
  }

  for (const location of ['../secret.bin', '/etc/passwd', 'sub/../../x.bin', 'C:\\x.bin']) {
    it(`refuses an external location that escapes the folder: ${location}`, () => {
      const dir = tmpDir();
      writeFileSync(join(dir, 'm.onnx'), withLocation(location));
      assert.throws(() => loadModel(join(dir, 'm.onnx')), /outside the model's folder/);
    });
  }

  it('refuses a symlink that leads out of the folder', () => {
    const dir = tmpDir();
    const outside = tmpDir();
    writeFileSync(join(outside, 'w.bin'), new Uint8Array(4096));
    symlinkSync(join(outside, 'w.bin'), join(dir, 'w.bin'));
    writeFileSync(join(dir, 'm.onnx'), withLocation('w.bin'));
    assert.throws(() => loadModel(join(dir, 'm.onnx')), /resolves outside the model's folder/);
  });

  it('names a missing or short external file', () => {
    const dir = tmpDir();
    writeFileSync(join(dir, 'm.onnx'), withLocation('w.bin'));
    assert.throws(() => loadModel(join(dir, 'm.onnx')), /external data file "w.bin" is missing/);
    writeFileSync(join(dir, 'w.bin'), new Uint8Array(10));
    assert.throws(() => loadModel(join(dir, 'm.onnx')), /runs past the end of "w.bin"/);
  });

  it('never leaves a half-written file and never overwrites its input', () => {
    const dir = tmpDir();
    const path = join(dir, 'm.onnx');
    saveModel(smallConvNet(), path);
    const before = readFileSync(path);
    assert.throws(() => saveModel(smallConvNet(), path, { protect: [path] }), /would overwrite the input/);
    assert.deepEqual(readFileSync(path), before);
    assert.throws(() => saveModel(smallConvNet(), join(dir, 'no/such/dir/m.onnx')), /does not exist/);
    assert.deepEqual(listFiles(dir), ['m.onnx']);
  });
});
