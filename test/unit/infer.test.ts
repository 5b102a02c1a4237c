import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Model } from '../../src/ir/graph.js';
import { formatType } from '../../src/ir/types.js';
import { inferShapes } from '../../src/ops/infer.js';

/** The shape chain PyTorch exports for x.view(x.size(0), -1). */
function viewModel(): Model {
  const b = new ModelBuilder({ opset: 13 });
  const x = b.input('x', 'float32', ['N', 3, 4, 4]);
  const shape = b.op('Shape', [x]);
  const n = b.op('Gather', [shape, b.ints('zero', [0], [])], { axis: 0 });
  const n1 = b.op('Unsqueeze', [n, b.ints('axes', [0])]);
  const target = b.op('Concat', [n1, b.ints('minus_one', [-1])], { axis: 0 });
  const y = b.op('Reshape', [x, target]);
  const z = b.op('Relu', [y]);
  b.output(z, 'z', { kind: 'tensor', dtype: 'float32', shape: [null, null] });
  return b.build();
}

describe('shape inference', () => {
  it('keeps a symbolic batch through Shape → Gather → Concat → Reshape', () => {
    const m = viewModel();
    const report = inferShapes(m);
    assert.deepEqual(report.problems, []);
    assert.equal(formatType(m.graph.outputs[0].type), 'float32[N,48]');
  });

  it('makes shapes static where --input-shape fixes the inputs', () => {
    const m = viewModel();
    for (const n of m.graph.nodes) for (const v of n.outputs) if (v) v.type = undefined;
    inferShapes(m, { inputShapes: { x: [2, 3, 4, 4] } });
    assert.equal(formatType(m.graph.outputs[0].type), 'float32[2,48]');
  });

  it('refuses an --input-shape that contradicts the model', () => {
    assert.throws(() => inferShapes(viewModel(), { inputShapes: { x: [2, 3, 4] } }), /has rank 3, but the model declares \[N,3,4,4\]/);
    assert.throws(() => inferShapes(viewModel(), { inputShapes: { x: [2, 5, 4, 4] } }), /dim 1 is fixed to 3/);
    assert.throws(() => inferShapes(viewModel(), { inputShapes: { y: [1] } }), /names "y", but the model's inputs are: x/);
  });

  it('reports a contradiction between declared and inferred types against the node', () => {
    const m = viewModel();
    m.graph.outputs[0].type = { kind: 'tensor', dtype: 'float32', shape: ['N', 47] };
    const report = inferShapes(m);
    assert.match(
      report.problems.map((p) => `${p.node}: ${p.message}`).join('\n'),
      /Relu node .*declared float32\[N,47\], inferred float32\[N,48\]/,
    );
  });

  it('lists ops it has no rule for instead of guessing', () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', [2]);
    b.output(b.op('Mystery', [x], {}, { domain: 'com.example' }), 'y', { kind: 'tensor', dtype: 'float32', shape: [2] });
    const report = inferShapes(b.build());
    assert.equal(report.unknownOps.get('com.example.Mystery'), 1);
  });
});
