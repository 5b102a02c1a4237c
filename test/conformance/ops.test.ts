/**
 * Conformance of our own op knowledge on the ONNX node tests: shape inference (declared types
 * erased, then inferred) and the reference kernels must agree with every test they cover.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listCases } from './harness.js';
import { type Check, checkKernels, checkShapes } from './ops-harness.js';

function run(check: (suite: string, name: string) => Check): { passed: number; failures: string[] } {
  let passed = 0;
  const failures: string[] = [];
  for (const name of listCases('node')) {
    let r: Check;
    try {
      r = check('node', name);
    } catch (e) {
      r = { status: 'fail', reason: `crashed: ${(e as Error).message}` };
    }
    if (r.status === 'pass') passed++;
    if (r.status === 'fail') failures.push(`${name}: ${r.reason}`);
  }
  return { passed, failures };
}

describe('ONNX node tests: our shape rules and kernels', () => {
  it('shape inference matches every output shape and type it infers', () => {
    const { passed, failures } = run(checkShapes);
    assert.deepEqual(failures, []);
    assert.ok(passed >= SHAPES_FLOOR, `only ${passed} node tests pass shape inference (floor ${SHAPES_FLOOR})`);
  });

  it('reference kernels match every test they cover', () => {
    const { passed, failures } = run(checkKernels);
    assert.deepEqual(failures, []);
    assert.ok(passed >= KERNELS_FLOOR, `only ${passed} node tests pass on the reference kernels (floor ${KERNELS_FLOOR})`);
  });
});

/** Coverage floors: raise them as rules and kernels are added, never lower them. */
const SHAPES_FLOOR = 932;
const KERNELS_FLOOR = 898;
