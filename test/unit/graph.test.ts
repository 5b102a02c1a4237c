import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';

describe('Graph', () => {
  it('keeps use lists through rewiring and removal', () => {
    const g = new Graph();
    const x = g.addInput('x', { kind: 'tensor', dtype: 'float32', shape: [2] });
    const a = g.addNode('Relu', [x]).output();
    const b = g.addNode('Neg', [a]).output();
    g.addOutput(b);
    assert.equal(x.uses.length, 1);
    assert.equal(a.uses[0].node.opType, 'Neg');
    // Bypass the Relu, then delete it.
    g.replaceAllUses(a, x);
    assert.equal(a.uses.length, 0);
    assert.equal(x.uses.length, 2);
    g.removeNode(a.producer!);
    assert.equal(x.uses.length, 1);
    assert.equal(g.nodes.length, 1);
  });

  it('keeps a graph output name when its value is replaced', () => {
    const g = new Graph();
    const x = g.addInput('x');
    const id = g.addNode('Identity', [x], ['y']);
    const relu = g.addNode('Relu', [x], ['r']);
    g.addOutput(id.output());
    g.replaceAllUses(id.output(), relu.output());
    assert.equal(g.outputs[0].name, 'y');
    assert.equal(g.outputs[0].producer, relu);
  });

  it('refuses to remove a node whose output is still read', () => {
    const g = new Graph();
    const x = g.addInput('x');
    const n = g.addNode('Relu', [x]);
    g.addNode('Neg', [n.output()]);
    assert.throws(() => g.removeNode(n), /still used/);
  });

  it('sorts nodes topologically and finds cycles', () => {
    const g = new Graph();
    const x = g.addInput('x');
    const late = g.addNode('Neg', [null]);
    const early = g.addNode('Relu', [x]);
    late.setInput(0, early.output());
    assert.equal(g.topoSort(), undefined);
    assert.deepEqual(
      g.nodes.map((n) => n.opType),
      ['Relu', 'Neg'],
    );
    early.setInput(0, late.output());
    const cycle = g.topoSort();
    assert.ok(cycle && cycle.length === 2);
  });

  it('sorts a 100 000-node chain without overflowing the stack', () => {
    const g = new Graph();
    let v = g.addInput('x');
    const nodes = [];
    for (let i = 0; i < 100_000; i++) {
      const n = g.addNode('Relu', [v]);
      nodes.push(n);
      v = n.output();
    }
    g.nodes.reverse();
    assert.equal(g.topoSort(), undefined);
    assert.equal(g.nodes[0], nodes[0]);
  });

  it('makes unique names across subgraphs', () => {
    const g = new Graph();
    g.addInitializer('w', Tensor.zeros('float32', [1]));
    const sub = new Graph('body', g);
    assert.notEqual(sub.freshName('w'), 'w');
  });
});
