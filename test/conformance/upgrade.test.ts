/**
 * Conformance of the opset upgrader: every ONNX backend test model below the target opset is
 * upgraded (to 21, to 17, and to the smallest opset ≥ 13 above its own), run on onnxruntime-node
 * and compared with the suite's expected outputs. No test may fail (a failure is a wrong
 * upgrade), every skip carries its reason, and every model below opset 7 (which onnxruntime
 * refuses as written) must pass once upgraded.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testDataAvailable } from './harness.js';
import { runUpgradeAll, summarize, type UpgradeTarget } from './upgrade-harness.js';

const TARGETS: Array<{ target: UpgradeTarget; label: string; floor: number }> = [
  { target: 21, label: 'opset 21', floor: 1026 },
  { target: 17, label: 'opset 17', floor: 963 },
  { target: 'next', label: 'the smallest opset ≥ 13 above the model’s', floor: 1026 },
];

describe('ONNX backend tests: upgrade → write → onnxruntime', () => {
  it('has the test data installed (apt-get install libonnx-testdata)', () => {
    assert.ok(testDataAvailable(), 'libonnx-testdata is missing; the README test command installs it');
  });

  for (const { target, label, floor } of TARGETS) {
    it(`to ${label}: no failures, every skip explained, every model below opset 7 runs`, async (t) => {
      const results = await runUpgradeAll(target);
      const s = summarize(results);
      t.diagnostic(`${label}: ${s.run} run, ${s.passed} match, ${s.failed} failed, ${s.skipped} skipped, ${s.notApplicable} already there`);
      for (const [why, n] of Object.entries(s.skipReasons)) t.diagnostic(`  skipped ${n}: ${why}`);
      assert.deepEqual(
        results
          .filter((r) => r.outcome.status === 'fail')
          .map((r) => `${r.suite}/${r.name} (${r.from} → ${r.to}): ${(r.outcome as { reason: string }).reason}`),
        [],
      );
      for (const r of results) {
        if (r.outcome.status === 'skip' || r.outcome.status === 'n/a')
          assert.ok(r.outcome.reason.length > 10, `${r.name} is skipped without a reason`);
      }
      const old = results.filter((r) => r.from !== undefined && r.from < 7);
      assert.ok(old.length >= 130, `only ${old.length} models below opset 7`);
      assert.deepEqual(
        old.filter((r) => r.outcome.status !== 'pass').map((r) => `${r.suite}/${r.name}: ${JSON.stringify(r.outcome)}`),
        [],
      );
      assert.ok(s.passed >= floor, `${s.passed} upgraded tests match, below the floor of ${floor}`);
    });
  }
});
