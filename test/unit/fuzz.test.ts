/**
 * Hostile model files: thousands of mutations of a small model (truncation, byte flips, huge
 * dims, huge lengths) must each end in a model or in a MobilizeError — never another exception,
 * a hang, or an allocation that grows without bound.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMobilizeError } from '../../src/errors.js';
import { readModel } from '../../src/formats/index.js';
import { Long, onnx } from '../../src/formats/onnx/schema.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { printModel } from '../../src/ir/print.js';
import { verifyModel } from '../../src/ir/verify.js';
import { defaultRegistry } from '../../src/ops/index.js';
import { inferShapes } from '../../src/ops/infer.js';
import { Random } from '../../src/util/random.js';
import { smallConvNet } from '../helpers.js';

const registry = defaultRegistry();

/** Everything a command does with a model before handing it to a runtime. */
function pipeline(bytes: Uint8Array): void {
  const m = readModel(bytes, { source: 'fuzz.onnx' });
  verifyModel(m, { registry });
  inferShapes(m);
  writeOnnx(m);
  printModel(m);
}

function mutate(base: Uint8Array, rng: Random): Uint8Array {
  const kind = rng.int(0, 4);
  if (kind === 0) return base.subarray(0, rng.int(0, base.length));
  const out = Uint8Array.from(base);
  if (kind === 1) {
    for (let i = rng.int(1, 8); i > 0; i--) out[rng.int(0, out.length)] ^= 1 << rng.int(0, 8);
  } else if (kind === 2) {
    for (let i = rng.int(1, 4); i > 0; i--) out[rng.int(0, out.length)] = rng.int(0, 256);
  } else {
    // A length or varint field pushed to its maximum.
    const at = rng.int(0, out.length - 5);
    out.set([0xff, 0xff, 0xff, 0xff, 0x0f], at);
  }
  return out;
}

/** Structurally valid protobuf with absurd dims in shapes, tensors and attributes. */
function hugeDims(base: Uint8Array, rng: Random): Uint8Array {
  const p = onnx.ModelProto.decode(base);
  const g = p.graph!;
  const huge = [Long.fromNumber(2 ** 40), Long.MAX_VALUE, Long.fromInt(-7), Long.fromNumber(2 ** 31)][rng.int(0, 4)];
  const pick = rng.int(0, 4);
  if (pick === 0) g.initializer![rng.int(0, g.initializer!.length)].dims![0] = huge;
  else if (pick === 1) g.input![0].type!.tensorType!.shape!.dim![rng.int(0, 4)] = { dimValue: huge };
  else if (pick === 2) {
    const attr = g.node![0].attribute!.find((a) => a.name === 'pads');
    if (attr) attr.ints![0] = huge;
  } else {
    g.node!.push({ opType: 'ConstantOfShape', input: ['shape_huge'], output: ['big'] });
    g.initializer!.push({ name: 'shape_huge', dims: [Long.fromInt(2)], dataType: 7, int64Data: [huge, huge] });
  }
  return onnx.ModelProto.encode(p).finish();
}

describe('fuzzing the model reader', () => {
  it('survives 3000 mutated files with clean errors and bounded memory', () => {
    const base = writeOnnx(smallConvNet()).model;
    const rng = new Random(1234);
    const rssBefore = process.memoryUsage().rss;
    let rejected = 0;
    const t0 = performance.now();
    for (let i = 0; i < 3000; i++) {
      const bytes = i % 5 === 4 ? hugeDims(base, rng) : mutate(base, rng);
      try {
        pipeline(bytes);
      } catch (e) {
        if (!isMobilizeError(e)) assert.fail(`mutation ${i} threw ${(e as Error).name}: ${(e as Error).message}\n${(e as Error).stack}`);
        assert.doesNotMatch(e.message, /\n/, 'errors are one line');
        rejected++;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const growth = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    assert.ok(rejected > 500, `most mutations are rejected (${rejected})`);
    assert.ok(seconds < 60, `no hang (${seconds.toFixed(1)} s)`);
    assert.ok(growth < 512, `memory stays bounded (${growth.toFixed(0)} MB)`);
  });
});
