import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readOnnx } from '../../src/formats/onnx/read.js';
import { Long, onnx } from '../../src/formats/onnx/schema.js';
import { writeOnnx } from '../../src/formats/onnx/write.js';
import type { Model } from '../../src/ir/graph.js';
import { printModel } from '../../src/ir/print.js';
import { Tensor } from '../../src/ir/tensor.js';
import { smallConvNet } from '../helpers.js';

const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;

/** A model that carries everything ONNX allows that mobilize does not interpret. */
function kitchenSink(): Uint8Array {
  const floatType = (dims: Array<number | string | null>, denotations?: string[]): onnx.TypeProto.$Properties => ({
    tensorType: {
      elemType: T.FLOAT,
      shape: {
        dim: dims.map((d, i) => ({
          ...(typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {}),
          ...(denotations?.[i] ? { denotation: denotations[i] } : {}),
        })),
      },
    },
    denotation: 'TENSOR',
  });
  const thenBranch: onnx.GraphProto.$Properties = {
    name: 'then',
    node: [{ opType: 'Identity', input: ['x'], output: ['then_out'] }],
    output: [{ name: 'then_out', type: floatType(['N', 2]) }],
  };
  const elseBranch: onnx.GraphProto.$Properties = {
    name: 'else',
    node: [{ opType: 'Neg', input: ['x'], output: ['else_out'] }],
    output: [{ name: 'else_out', type: floatType(['N', 2]) }],
  };
  const model: onnx.ModelProto.$Properties = {
    irVersion: 8,
    producerName: 'kitchen',
    producerVersion: '1.0',
    domain: 'org.example',
    modelVersion: 42,
    docString: 'model doc',
    opsetImport: [
      { domain: '', version: 15 },
      { domain: 'com.example', version: 3 },
    ],
    metadataProps: [{ key: 'author', value: 'test' }],
    graph: {
      name: 'main',
      docString: 'graph doc',
      input: [
        { name: 'x', type: floatType(['N', 2], ['DATA_BATCH', 'DATA_FEATURE']), docString: 'input doc' },
        { name: 'cond', type: { tensorType: { elemType: T.BOOL, shape: { dim: [] } } } },
      ],
      initializer: [
        { name: 'big', dims: [3], dataType: T.INT64, int64Data: [Long.MAX_VALUE, Long.MIN_VALUE, Long.fromInt(5)] },
        {
          name: 'fd',
          dims: [2],
          dataType: T.FLOAT,
          floatData: [0.5, -1.25],
          docString: 'tensor doc',
          metadataProps: [{ key: 'k', value: 'v' }],
        },
      ],
      sparseInitializer: [
        {
          values: { name: 'sp', dims: [2], dataType: T.FLOAT, floatData: [1, 2] },
          indices: { dims: [2], dataType: T.INT64, int64Data: [Long.fromInt(0), Long.fromInt(3)] },
          dims: [Long.fromInt(4)],
        },
      ],
      node: [
        {
          opType: 'If',
          name: 'branch',
          input: ['cond'],
          output: ['y'],
          docString: 'node doc',
          metadataProps: [{ key: 'nk', value: 'nv' }],
          attribute: [
            { name: 'then_branch', type: A.GRAPH, g: thenBranch },
            { name: 'else_branch', type: A.GRAPH, g: elseBranch },
          ],
        },
        {
          opType: 'Custom',
          domain: 'com.example',
          input: ['y', 'big', '', 'fd'],
          output: ['z', ''],
          attribute: [
            { name: 'ints', type: A.INTS, ints: [Long.MAX_VALUE, Long.fromInt(-1)] },
            { name: 'raw', type: A.STRING, s: Uint8Array.from([0xff, 0x00, 0x41]), docString: 'attr doc' },
            { name: 'f', type: A.FLOAT, f: 0.1 },
            { name: 'names', type: A.STRINGS, strings: [new TextEncoder().encode('a'), new TextEncoder().encode('é')] },
            { name: 'tp', type: A.TYPE_PROTO, tp: floatType([1]) },
          ],
        },
      ],
      output: [{ name: 'z', type: floatType(['N', 2]) }],
      valueInfo: [{ name: 'y', type: floatType(['N', 2]), docString: 'vi doc', metadataProps: [{ key: 'vk', value: 'vv' }] }],
      quantizationAnnotation: [{ tensorName: 'y', quantParameterTensorNames: [{ key: 'SCALE_TENSOR', value: 'fd' }] }],
      metadataProps: [{ key: 'gk', value: 'gv' }],
    },
    trainingInfo: [{ initialization: { name: 'init' }, updateBinding: [{ key: 'fd', value: 'fd' }] }],
    functions: [
      {
        name: 'MyFn',
        domain: 'com.example',
        input: ['a'],
        output: ['b'],
        attribute: ['alpha'],
        node: [{ opType: 'LeakyRelu', input: ['a'], output: ['b'], attribute: [{ name: 'alpha', type: A.FLOAT, refAttrName: 'alpha' }] }],
        opsetImport: [{ domain: '', version: 15 }],
      },
    ],
  };
  const bytes = onnx.ModelProto.encode(model).finish();
  // An unknown top-level field (number 99, varint 7), as a future ONNX version might add.
  return Uint8Array.from([...bytes, 0x98, 0x06, 0x07]);
}

function roundTrip(m: Model): Model {
  return readOnnx(writeOnnx(m).model);
}

describe('ONNX read/write', () => {
  it('keeps everything a model carries through a round trip', () => {
    const original = readOnnx(kitchenSink());
    const again = roundTrip(original);
    assert.equal(printModel(again), printModel(original));
    assert.equal(again.producerName, 'kitchen');
    assert.equal(again.producerVersion, '1.0');
    assert.equal(again.domain, 'org.example');
    assert.equal(again.modelVersion, 42);
    assert.equal(again.doc, 'model doc');
    assert.deepEqual(again.metadata, [['author', 'test']]);
    assert.deepEqual(
      [...again.opsetImports],
      [
        ['', 15],
        ['com.example', 3],
      ],
    );
    const g = again.graph;
    assert.equal(g.doc, 'graph doc');
    assert.deepEqual(g.metadata, [['gk', 'gv']]);
    assert.equal(g.inputs[0].doc, 'input doc');
    const xt = g.inputs[0].type;
    assert.ok(xt?.kind === 'tensor');
    assert.deepEqual(xt.dimDenotations, ['DATA_BATCH', 'DATA_FEATURE']);
    assert.equal(xt.denotation, 'TENSOR');
    const big = g.initializers.find((v) => v.name === 'big')!.initializer!;
    assert.deepEqual([...(big.data as BigInt64Array)], [2n ** 63n - 1n, -(2n ** 63n), 5n]);
    const fd = g.initializers.find((v) => v.name === 'fd')!.initializer!;
    assert.deepEqual([...fd.data], [0.5, -1.25]);
    assert.equal(fd.doc, 'tensor doc');
    assert.deepEqual(fd.metadata, [['k', 'v']]);
    const sp = g.initializers.find((v) => v.name === 'sp')!;
    assert.deepEqual(sp.sparseInitializer?.dims, [4]);
    const [ifNode, custom] = g.nodes;
    assert.equal(ifNode.doc, 'node doc');
    assert.deepEqual(ifNode.metadata, [['nk', 'nv']]);
    assert.equal(ifNode.subgraphs().length, 2);
    assert.equal(custom.domain, 'com.example');
    assert.equal(custom.inputs[2], null);
    assert.equal(custom.outputs[1], null);
    assert.deepEqual(custom.ints('ints'), [2 ** 63, -1]);
    const raw = custom.attr('raw');
    assert.ok(raw?.type === 'string');
    assert.deepEqual([...(raw.raw ?? [])], [0xff, 0x00, 0x41]);
    assert.equal(raw.doc, 'attr doc');
    assert.deepEqual(custom.attr('names')?.value, ['a', 'é']);
    assert.equal(custom.float('f'), Math.fround(0.1));
    const y = ifNode.output();
    assert.equal(y.doc, 'vi doc');
    assert.deepEqual(y.metadata, [['vk', 'vv']]);
    assert.deepEqual(g.quantizationAnnotations, [{ tensorName: 'y', entries: [['SCALE_TENSOR', 'fd']] }]);
    assert.equal(again.trainingInfo.length, 1);
    assert.equal(again.functions[0].name, 'MyFn');
    assert.equal(again.functions[0].body.nodes[0].attr('alpha')?.refAttrName, 'alpha');
    assert.deepEqual(
      again.unknownFields?.map((b) => [...b]),
      [[0x98, 0x06, 0x07]],
    );
  });

  it('writes INT64_MAX attributes back exactly', () => {
    const bytes = writeOnnx(readOnnx(kitchenSink())).model;
    const proto = onnx.ModelProto.decode(bytes);
    const ints = proto.graph!.node![1].attribute!.find((a) => a.name === 'ints')!.ints!;
    assert.equal(String(ints[0]), '9223372036854775807');
    assert.equal(String(ints[1]), '-1');
  });

  it('is stable: writing what it read gives the same bytes', () => {
    const once = writeOnnx(smallConvNet()).model;
    const twice = writeOnnx(readOnnx(once)).model;
    assert.deepEqual(Buffer.from(twice), Buffer.from(once));
  });

  it('reads weights as views into the file buffer', () => {
    const bytes = writeOnnx(smallConvNet()).model;
    const m = readOnnx(bytes);
    const w = m.graph.initializers.find((v) => v.name === 'w')!.initializer!;
    assert.equal(w.bytes.buffer, bytes.buffer);
  });

  it('puts nodes of an out-of-order file into topological order', () => {
    const proto = onnx.ModelProto.decode(writeOnnx(smallConvNet()).model);
    proto.graph!.node!.reverse();
    const m = readOnnx(onnx.ModelProto.encode(proto).finish());
    assert.deepEqual(
      m.graph.nodes.map((n) => n.name),
      ['conv', 'relu', 'gap', 'flatten', 'fc'],
    );
  });

  it('reports structural faults with the node and value they concern', () => {
    const base = (): onnx.ModelProto => onnx.ModelProto.decode(writeOnnx(smallConvNet()).model);
    const dangling = base();
    dangling.graph!.node![1].input = ['nowhere'];
    assert.throws(
      () => readOnnx(onnx.ModelProto.encode(dangling).finish(), { source: 'm.onnx' }),
      /m\.onnx: "nowhere" \(input of Relu node "relu"\) is not defined/,
    );
    const cycle = base();
    cycle.graph!.node![0].input = ['x', 'w'];
    cycle.graph!.node![1].input = ['fc_out'];
    cycle.graph!.node![4].output = ['fc_out'];
    cycle.graph!.output![0].name = 'fc_out';
    assert.throws(() => readOnnx(onnx.ModelProto.encode(cycle).finish()), /cycle through/);
    const twice = base();
    twice.graph!.node![1].output = [twice.graph!.node![0].output![0]];
    assert.throws(() => readOnnx(onnx.ModelProto.encode(twice).finish()), /already defined by Conv node "conv"/);
    const badTensor = base();
    badTensor.graph!.initializer![0].dims = [Long.fromInt(1000)];
    assert.throws(() => readOnnx(onnx.ModelProto.encode(badTensor).finish()), /holds 432 bytes but float32\[1000\] needs 4000/);
  });

  it('reads an attribute-type-less IR v1 style attribute by the field it sets', () => {
    const proto = onnx.ModelProto.decode(writeOnnx(smallConvNet()).model);
    for (const a of proto.graph!.node![0].attribute!) a.type = 0;
    const m = readOnnx(onnx.ModelProto.encode(proto).finish());
    assert.deepEqual(m.graph.nodes[0].ints('kernel_shape'), [3, 3]);
  });

  it('round-trips every dtype through raw data', () => {
    for (const dtype of [
      'float32',
      'uint8',
      'int8',
      'uint16',
      'int16',
      'int32',
      'int64',
      'bool',
      'float16',
      'float64',
      'uint32',
      'uint64',
      'bfloat16',
      'int4',
      'uint4',
    ] as const) {
      const m = smallConvNet();
      const t = Tensor.zeros(dtype, [3]);
      m.graph.addInitializer(`t_${dtype}`, t);
      const back = roundTrip(m).graph.initializers.find((v) => v.name === `t_${dtype}`)!.initializer!;
      assert.equal(back.dtype, dtype);
      assert.deepEqual(back.dims, [3]);
      assert.ok(back.equals(t));
    }
  });
});
