/**
 * Conformance: every ONNX backend test model (libonnx-testdata, ONNX 1.12) is read into the IR,
 * written back, run on onnxruntime-node and compared with the suite's expected outputs.
 * Skips carry a reason (see docs/conformance.md for the full list).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listCases, runSuite, SUITES, testDataAvailable } from './harness.js';

describe('ONNX backend tests: read → write → onnxruntime', () => {
  it('has the test data installed (apt-get install libonnx-testdata)', () => {
    assert.ok(testDataAvailable(), 'libonnx-testdata is missing; the README test command installs it');
  });

  for (const suite of SUITES) {
    it(`${suite}: no failures, every skip explained`, async () => {
      const results = await runSuite(suite);
      assert.equal(results.length, listCases(suite).length);
      const failures = results.filter((r) => r.outcome.status === 'fail');
      assert.deepEqual(
        failures.map((r) => `${r.name}: ${(r.outcome as { reason: string }).reason}`),
        [],
      );
      for (const r of results)
        if (r.outcome.status === 'skip') assert.ok(r.outcome.reason.length > 10, `${r.name} is skipped without a reason`);
      if (suite === 'node') {
        const passed = results.filter((r) => r.outcome.status === 'pass').length;
        assert.equal(results.length, 932);
        assert.ok(passed / 932 >= 0.95, `${passed}/932 node tests pass (${((100 * passed) / 932).toFixed(1)}%), below 95%`);
      }
    });
  }
});
