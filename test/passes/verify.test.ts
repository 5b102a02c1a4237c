/** optimize refuses to hand back a model whose outputs changed, and names the pass at fault. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMobilizeError } from '../../src/errors.js';
import { constantFolding } from '../../src/passes/constant-folding.js';
import { deadCode } from '../../src/passes/dead-code.js';
import { pattern } from '../../src/passes/pass.js';
import { optimizeModel } from '../../src/pipeline/optimize.js';
import { nodeBackend } from '../../src/runtime/node.js';
import { smallConvNet } from '../helpers.js';

/** A deliberately wrong rewrite: Relu becomes Neg. */
const broken = pattern({
  name: 'broken-relu',
  description: 'turns Relu into Neg (wrong on purpose)',
  level: 'basic',
  roots: ['Relu'],
  match: (n) => n,
  apply(n) {
    n.opType = 'Neg';
  },
});

describe('optimize --verify', () => {
  it('passes a correct pipeline and reports the agreement', async () => {
    const report = await optimizeModel(smallConvNet(), { verifyWith: nodeBackend(), passes: [constantFolding, deadCode] });
    assert.equal(report.verify.checked, true);
    assert.ok((report.verify.agreement?.worst ?? 1) <= 1e-6);
  });

  it('refuses a model a pass broke, naming the pass', async () => {
    await assert.rejects(
      optimizeModel(smallConvNet(), { verifyWith: nodeBackend(), passes: [constantFolding, broken, deadCode] }),
      (e: unknown) => isMobilizeError(e) && e.exitCode === 1 && /pass "broken-relu" made the difference/.test(e.message),
    );
  });

  it('says so when the runtime cannot run the original', async () => {
    const m = smallConvNet();
    m.graph.nodes[1].domain = 'com.example';
    m.opsetImports.set('com.example', 1);
    const report = await optimizeModel(m, { verifyWith: nodeBackend(), passes: [deadCode] });
    assert.equal(report.verify.checked, false);
    assert.match(report.verify.skipped ?? '', /onnxruntime cannot load the model/);
  });
});
