import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph, Model } from '../../src/ir/graph.js';
import { assertValid, verifyModel } from '../../src/ir/verify.js';
import { defaultRegistry } from '../../src/ops/index.js';
import { smallConvNet } from '../helpers.js';

const registry = defaultRegistry();
const messages = (m: Model): string[] => verifyModel(m, { registry }).map((i) => `${i.where}: ${i.message}`);

function tiny(): { model: Model; g: Graph } {
  const g = new Graph();
  const x = g.addInput('x', { kind: 'tensor', dtype: 'float32', shape: [2] });
  const r = g.addNode('Relu', [x], ['r']);
  g.addOutput(r.output());
  r.output().type = { kind: 'tensor', dtype: 'float32', shape: [2] };
  return { model: new Model(g, new Map([['', 13]])), g };
}

describe('verifier', () => {
  it('accepts a well-formed model', () => {
    assert.deepEqual(messages(smallConvNet()), []);
  });

  it('finds uses before definitions (order or cycle)', () => {
    const { model, g } = tiny();
    const n = g.addNode('Neg', [g.outputs[0]], ['n']);
    g.nodes.unshift(g.nodes.pop()!);
    assert.match(messages(model).join('\n'), /Neg node .*reads "r" before it is computed/);
    g.nodes.push(g.nodes.shift()!);
    n.setInput(0, n.output());
    assert.match(messages(model).join('\n'), /reads "n" before it is computed/);
  });

  it('finds dangling references', () => {
    const { model, g } = tiny();
    const ghost = g.createValue('ghost');
    g.nodes[0].setInput(0, ghost);
    assert.match(messages(model).join('\n'), /reads "ghost", which nothing defines/);
    assert.throws(() => assertValid(model, 'm.onnx'), /m\.onnx: invalid model: Relu node .* reads "ghost"/);
  });

  it('finds broken use lists and double definitions', () => {
    const { model, g } = tiny();
    g.nodes[0].inputs[0] = g.addInput('other', { kind: 'tensor', dtype: 'float32', shape: [2] });
    assert.match(messages(model).join('\n'), /missing from that value's use list/);
    assert.match(messages(model).join('\n'), /lists a use by Relu node .* that does not read it/);
  });

  it('checks initializer data against declared types, and attribute types against the op', () => {
    const m = smallConvNet();
    const w = m.graph.initializers.find((v) => v.name === 'w')!;
    w.type = { kind: 'tensor', dtype: 'float16', shape: [4, 3, 3, 3] };
    m.graph.nodes[0].attrs.set('kernel_shape', { type: 'floats', value: [3, 3] });
    const text = messages(m).join('\n');
    assert.match(text, /initializer "w" holds float32 data but is declared float16/);
    if (registry.get('', 'Conv')?.attrs) assert.match(text, /attribute "kernel_shape" is floats, but Conv takes ints/);
  });

  it('requires imported opsets for the domains used', () => {
    const { model, g } = tiny();
    g.nodes[0].domain = 'com.example';
    assert.match(messages(model).join('\n'), /uses domain "com.example", which the model does not import/);
  });

  it('checks that subgraphs only read values defined before their node', () => {
    const { model, g } = tiny();
    const cond = g.addInput('cond', { kind: 'tensor', dtype: 'bool', shape: [] });
    const branch = (name: string): Graph => {
      const sg = new Graph(name, g);
      sg.addOutput(sg.addNode('Identity', [g.outputs[0]]).output());
      return sg;
    };
    const ifNode = g.addNode('If', [cond], ['y'], {
      attrs: [
        ['then_branch', { type: 'graph', value: branch('t') }],
        ['else_branch', { type: 'graph', value: branch('e') }],
      ],
    });
    assert.deepEqual(messages(model), []);
    g.nodes.unshift(g.nodes.pop()!);
    assert.match(messages(model).join('\n'), /Identity node .*reads "r" before it is computed/);
    assert.equal(g.topoSort(), undefined);
    assert.equal(g.nodes[1], ifNode);
  });
});
