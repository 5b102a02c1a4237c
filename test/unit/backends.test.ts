/** The three backends behind one interface give the same outputs for the same model. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Backend } from '../../src/runtime/backend.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { referenceBackend } from '../../src/runtime/reference.js';
import { webBackend } from '../../src/runtime/web.js';
import { maxAbsDiff, randomTensor, smallConvNet } from '../helpers.js';

async function run(backend: Backend): Promise<ReturnType<typeof randomTensor>> {
  const session = await backend.createSession(smallConvNet());
  assert.deepEqual(session.inputNames, ['x']);
  assert.deepEqual(session.outputNames, ['logits']);
  const out = await session.run({ x: randomTensor([2, 3, 8, 8]) });
  await session.release();
  return out.logits;
}

describe('backends', () => {
  it('onnxruntime-node, onnxruntime-web (WASM) and the reference interpreter agree', async () => {
    const node = await run(nodeBackend());
    const web = await run(webBackend());
    const ref = await run(referenceBackend());
    assert.deepEqual(node.dims, [2, 5]);
    assert.ok(maxAbsDiff(node, web) < 1e-5, `web differs by ${maxAbsDiff(node, web)}`);
    assert.ok(maxAbsDiff(node, ref) < 1e-5, `reference differs by ${maxAbsDiff(node, ref)}`);
  });

  it('names a missing input', async () => {
    const session = await nodeBackend().createSession(smallConvNet());
    await assert.rejects(session.run({}), /no value given for model input "x"/);
  });
});
