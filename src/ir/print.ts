/**
 * A readable text form of a model, one node per line:
 *
 *   graph main (%x: float32[N,3,224,224]) -> (%y: float32[N,1000]) {
 *     init %w: float32[32,3,3,3]
 *     %c = Conv(%x, %w) {kernel_shape=[3,3], pads=[1,1,1,1]}
 *     ...
 *   }
 *
 * Deterministic, so golden tests can compare it line by line.
 */
import type { Attribute } from './attributes.js';
import type { Graph, Model, Node, Value } from './graph.js';
import type { Tensor } from './tensor.js';
import { formatType } from './types.js';

export interface PrintOptions {
  /** Show the types of node outputs where known (default false: keeps golden files short). */
  types?: boolean;
  /** Tensors up to this many elements are printed in full (default 8). */
  maxElements?: number;
}

export function printModel(model: Model, options: PrintOptions = {}): string {
  const opsets = [...model.opsetImports].map(([d, v]) => `${d || 'ai.onnx'}:${v}`).join(' ');
  const head = `model ir=${model.irVersion} opset=${opsets}${model.producerName ? ` producer=${model.producerName}` : ''}`;
  return `${head}\n${printGraph(model.graph, options)}\n`;
}

export function printGraph(g: Graph, options: PrintOptions = {}, indent = ''): string {
  const io = (v: Value): string => `%${v.name}: ${formatType(v.type)}`;
  const lines = [`${indent}graph ${g.name || '_'} (${g.inputs.map(io).join(', ')}) -> (${g.outputs.map(io).join(', ')}) {`];
  const inner = `${indent}  `;
  for (const v of g.initializers) {
    if (g.inputs.includes(v)) continue;
    lines.push(`${inner}init %${v.name}: ${v.initializer ? tensorSummary(v.initializer, options) : `sparse ${formatType(v.type)}`}`);
  }
  for (const n of g.nodes) lines.push(printNode(n, options, inner));
  lines.push(`${indent}}`);
  return lines.join('\n');
}

export function printNode(n: Node, options: PrintOptions = {}, indent = ''): string {
  const outs = n.outputs.map((v) => (v ? `%${v.name}${options.types && v.type ? `: ${formatType(v.type)}` : ''}` : '_')).join(', ');
  const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType;
  const args = n.inputs.map((v) => (v ? `%${v.name}` : '_')).join(', ');
  const attrs = [...n.attrs].sort(([a], [b]) => a.localeCompare(b)).map(([k, a]) => `${k}=${formatAttribute(a, options, indent)}`);
  const name = n.name ? ` "${n.name}"` : '';
  return `${indent}${outs} = ${op}${name}(${args})${attrs.length > 0 ? ` {${attrs.join(', ')}}` : ''}`;
}

function formatAttribute(a: Attribute, options: PrintOptions, indent: string): string {
  if (a.refAttrName !== undefined) return `@${a.refAttrName}`;
  switch (a.type) {
    case 'float':
    case 'int':
      return String(a.value);
    case 'string':
      return JSON.stringify(a.value);
    case 'floats':
    case 'ints':
      return `[${a.value.join(',')}]`;
    case 'strings':
      return `[${a.value.map((s) => JSON.stringify(s)).join(',')}]`;
    case 'tensor':
      return tensorSummary(a.value, options);
    case 'tensors':
      return `[${a.value.map((t) => tensorSummary(t, options)).join(', ')}]`;
    case 'graph':
      return `\n${printGraph(a.value, options, `${indent}    `)}\n${indent}`;
    case 'graphs':
      return `[${a.value.map((g) => `\n${printGraph(g, options, `${indent}    `)}`).join(',')}\n${indent}]`;
    case 'sparse_tensor':
      return `sparse ${a.value.values.dtype}[${a.value.dims.join(',')}]`;
    case 'sparse_tensors':
      return `[${a.value.length} sparse tensors]`;
    case 'type_proto':
      return formatType(a.value);
    case 'type_protos':
      return `[${a.value.map(formatType).join(', ')}]`;
    case 'undefined':
      return '?';
  }
}

export function tensorSummary(t: Tensor, options: PrintOptions = {}): string {
  const head = `${t.dtype}[${t.dims.join(',')}]`;
  const max = options.maxElements ?? 8;
  if (t.size > max) return head;
  if (t.dtype === 'string') return `${head}{${t.strings.map((s) => JSON.stringify(s)).join(',')}}`;
  try {
    return `${head}{${t.toNumbers().join(',')}}`;
  } catch {
    return head;
  }
}
