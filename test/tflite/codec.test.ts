/** The TFLite FlatBuffer codec: read → write → read is lossless, aligned and deduplicated; the real interpreter runs what we write. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tfl from '../../src/formats/tflite/generated/index.js';
import { Builtin, emptyModel, type TfliteModel, type TfliteOptions } from '../../src/formats/tflite/model.js';
import { camelToSnake, snakeToCamel } from '../../src/formats/tflite/options.js';
import { readTflite } from '../../src/formats/tflite/read.js';
import { writeTflite } from '../../src/formats/tflite/write.js';
import { Tensor } from '../../src/ir/tensor.js';
import { loadTflite } from '../../src/runtime/tflite.js';
import { FACE, FACE_SPARSE, fileBytes, floatConvNet, HANDS, noise, SELFIE } from './import-fixtures.js';

/** The model with each tensor's buffer replaced by its bytes, so two files compare whatever their buffer order. */
function comparable(m: TfliteModel) {
  return {
    ...m,
    buffers: [],
    description: undefined,
    subgraphs: m.subgraphs.map((g) => ({ ...g, tensors: g.tensors.map((t) => ({ ...t, buffer: Array.from(m.buffers[t.buffer]) })) })),
    metadata: m.metadata.map((x) => ({ name: x.name, data: Array.from(m.buffers[x.buffer]) })),
  };
}

function offsetIn(view: Uint8Array, file: Uint8Array): number {
  return view.byteOffset - file.byteOffset;
}

describe('TFLite codec', () => {
  for (const path of [FACE, FACE_SPARSE, HANDS, SELFIE]) {
    const name = path.split('/').pop()!;
    it(`round-trips ${name} losslessly, with 16-byte aligned constants`, () => {
      const original = readTflite(fileBytes(path), { source: name });
      const written = writeTflite(original);
      const again = readTflite(written, { source: 'rewritten' });
      assert.deepEqual(comparable(again), comparable(original));
      assert.equal(String.fromCharCode(...written.subarray(4, 8)), 'TFL3');
      for (const b of again.buffers) if (b.length > 0) assert.equal(offsetIn(b, written) % 16, 0);
      // Written twice, the bytes are the same: the writer is deterministic.
      assert.deepEqual(writeTflite(again), written);
    });
  }

  it('keeps sparse tensors, signature defs, metadata and custom options', () => {
    const sparse = readTflite(fileBytes(FACE_SPARSE));
    const again = readTflite(writeTflite(sparse));
    const sparseTensors = again.subgraphs[0].tensors.filter((t) => t.sparsity);
    assert.equal(sparseTensors.length, 46);
    assert.deepEqual(
      again.metadata.map((m) => m.name),
      ['min_runtime_version'],
    );
    const selfie = readTflite(writeTflite(readTflite(fileBytes(SELFIE))));
    const custom = selfie.subgraphs[0].operators.find(
      (op) => selfie.operatorCodes[op.opcodeIndex].customCode === 'Convolution2DTransposeBias',
    );
    assert.deepEqual(Array.from(custom?.customOptions ?? []), [1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0]);
    const small = readTflite(writeTflite(floatConvNet()));
    assert.deepEqual(small.signatureDefs[0].inputs, [{ name: 'image', tensorIndex: 0 }]);
    assert.deepEqual(
      small.signatureDefs[0].outputs.map((o) => o.name),
      ['probs', 'mean'],
    );
  });

  it('stores identical constants once and drops unreferenced buffers', () => {
    const m = floatConvNet();
    const conv = m.subgraphs[0].tensors.find((t) => t.name === 'conv/bias')!;
    const dw = m.subgraphs[0].tensors.find((t) => t.name === 'dw/bias')!;
    m.buffers[dw.buffer] = m.buffers[conv.buffer].slice();
    m.buffers.push(new Uint8Array(64).fill(7));
    const before = m.buffers.length;
    const again = readTflite(writeTflite(m));
    assert.equal(again.buffers.length, before - 2);
    const t = again.subgraphs[0].tensors;
    assert.equal(t.find((x) => x.name === 'dw/bias')?.buffer, t.find((x) => x.name === 'conv/bias')?.buffer);
  });

  it('writes files the real interpreter runs with outputs identical to the originals', async () => {
    for (const path of [FACE, FACE_SPARSE]) {
      const bytes = fileBytes(path);
      const a = await loadTflite(bytes);
      const b = await loadTflite(writeTflite(readTflite(bytes)));
      try {
        const info = a.inputs[0];
        const x = Tensor.from(
          'float32',
          info.shape,
          noise(
            info.shape.reduce((p, q) => p * q, 1),
            11,
          ),
        );
        const ra = await a.run({ [info.name]: x });
        const rb = await b.run({ [info.name]: x });
        for (const o of a.outputs) assert.deepEqual(rb[o.name].data, ra[o.name].data, o.name);
      } finally {
        a.dispose();
        b.dispose();
      }
    }
  });

  it('round-trips every member of both BuiltinOptions unions with every field set', () => {
    const m = emptyModel('options');
    m.operatorCodes.push({ builtinCode: Builtin.ADD, version: 1 });
    const options: TfliteOptions[] = [];
    for (const union of [tfl.BuiltinOptions, tfl.BuiltinOptions2]) {
      for (const [name, code] of Object.entries(union)) {
        if (typeof code !== 'number' || code === 0) continue;
        const ctor = (tfl as unknown as Record<string, new () => object>)[`${name}T`];
        const fields: TfliteOptions['fields'] = {};
        for (const [key, value] of Object.entries(new ctor())) {
          const snake = camelToSnake(key);
          assert.equal(snakeToCamel(snake), key);
          if (typeof value === 'boolean') fields[snake] = !value;
          else if (typeof value === 'number' || typeof value === 'bigint') fields[snake] = Number(value) + 1;
          else if (Array.isArray(value)) fields[snake] = [1, 0, 1];
          else fields[snake] = `${name}.${snake}`;
        }
        options.push({ type: name, fields });
      }
    }
    assert.equal(options.length, 147);
    m.subgraphs.push({
      tensors: [],
      inputs: [],
      outputs: [],
      operators: options.map((o) => ({ opcodeIndex: 0, inputs: [], outputs: [], options: o })),
    });
    const again = readTflite(writeTflite(m));
    assert.deepEqual(
      again.subgraphs[0].operators.map((op) => op.options),
      options,
    );
  });

  it('refuses to write an options table the schema does not have', () => {
    const m = emptyModel();
    m.operatorCodes.push({ builtinCode: Builtin.ADD, version: 1 });
    m.subgraphs.push({
      tensors: [],
      inputs: [],
      outputs: [],
      operators: [{ opcodeIndex: 0, inputs: [], outputs: [], options: { type: 'NoSuchOptions', fields: {} } }],
    });
    assert.throws(() => writeTflite(m), /operator 0 of subgraph 0: unknown TFLite options table "NoSuchOptions"/);
  });
});
