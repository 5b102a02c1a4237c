/**
 * Golden tests for passes: build a tiny graph, run the pass (with dead-code elimination to sweep
 * up) until nothing changes, compare the printed graph with the expected text, check the graph
 * is valid after every pass, and check on onnxruntime that outputs did not change.
 */
import assert from 'node:assert/strict';
import { compareModels } from '../../src/eval/equivalence.js';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/graph.js';
import { printModel } from '../../src/ir/print.js';
import { deadCode } from '../../src/passes/dead-code.js';
import { runToFixedPoint } from '../../src/passes/driver.js';
import type { Level, Pass } from '../../src/passes/pass.js';
import { nodeBackend } from '../../src/runtime/node.js';

export interface PassCase {
  /** Builds the graph under test (inputs, nodes, outputs with types). */
  build(b: ModelBuilder): void;
  /** The graph after the pass, as printModel prints it without the model header line. */
  expected: string;
  opset?: number;
  level?: Level;
  /** Largest output difference allowed, relative to the output scale (default 1e-5). */
  tolerance?: number;
  /** Skip the onnxruntime comparison (for graphs using ops it cannot run). */
  skipRuntime?: boolean;
}

export function buildModel(build: (b: ModelBuilder) => void, opset = 17): Model {
  const b = new ModelBuilder({ opset, name: 'g' });
  build(b);
  return b.build();
}

/** Prints a graph without the model line, without constant values, for golden comparisons. */
export function graphText(m: Model): string {
  return printModel(m, { maxElements: 0 }).split('\n').slice(1).join('\n').trim();
}

export async function checkPass(passes: Pass | Pass[], c: PassCase): Promise<{ before: Model; after: Model; rewrites: number }> {
  const before = buildModel(c.build, c.opset);
  const after = readOnnx(writeOnnx(before).model);
  const list = Array.isArray(passes) ? passes : [passes];
  const { stats } = runToFixedPoint(after, [...list, deadCode], { level: c.level ?? 'all', verifyEachPass: true });
  assert.equal(graphText(after), c.expected.trim());
  if (!c.skipRuntime) {
    const agreement = await compareModels(before, after, nodeBackend(), 7);
    assert.ok(agreement.worst <= (c.tolerance ?? 1e-5), `outputs changed: ${JSON.stringify(agreement.outputs)}`);
  }
  const rewrites = stats.filter((s) => s.name !== 'dead-code').reduce((a, s) => a + s.rewrites, 0);
  return { before, after, rewrites };
}
