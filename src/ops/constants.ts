/** The constant value of a graph value, when the graph itself fixes it. */
import type { Value } from '../ir/graph.js';
import { Tensor } from '../ir/tensor.js';

/** Tensor held by a Constant node's attribute, per the opset-13 spelling of its value forms. */
export function constantNodeValue(attrs: ReadonlyMap<string, import('../ir/attributes.js').Attribute>): Tensor | undefined {
  for (const [name, a] of attrs) {
    switch (name) {
      case 'value':
        if (a.type === 'tensor') return a.value;
        break;
      case 'value_float':
        if (a.type === 'float') return Tensor.from('float32', [], [a.value]);
        break;
      case 'value_floats':
        if (a.type === 'floats') return Tensor.from('float32', [a.value.length], a.value);
        break;
      case 'value_int':
        if (a.type === 'int') return Tensor.from('int64', [], [a.value]);
        break;
      case 'value_ints':
        if (a.type === 'ints') return Tensor.from('int64', [a.value.length], a.value);
        break;
      case 'value_string':
        if (a.type === 'string') return Tensor.fromStrings([], [a.raw ?? a.value]);
        break;
      case 'value_strings':
        if (a.type === 'strings') return Tensor.fromStrings([a.value.length], a.raw ?? a.value);
        break;
    }
  }
  return undefined;
}

/** An initializer that callers cannot override, or the output of a Constant node. */
export function constantOf(v: Value): Tensor | undefined {
  if (v.initializer && !v.isGraphInput) return v.initializer;
  const p = v.producer;
  if (p && p.opType === 'Constant' && (p.domain === '' || p.domain === 'ai.onnx')) return constantNodeValue(p.attrs);
  return undefined;
}
