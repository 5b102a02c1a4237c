/**
 * MatMul(A, B) + bias becomes Gemm(A, B, bias) when A is 2-D, B a constant 2-D [K, N] (so Gemm
 * keeps transB = 0), and the bias — either operand of the Add — broadcasts to [N] or [1, N]:
 * Gemm's C broadcasts along the rows exactly as the Add did, and the output keeps its shape. The
 * MatMul becomes the Gemm in place (same node name); the Add goes. Float32 only, opset 7 and
 * later (earlier Gemm needs a broadcast attribute for a row bias).
 */
import type { Node, Value } from '../ir/graph.js';
import { bypass } from './edit.js';
import { canReplace, constantValue, dtypeOf, hasOneUse, producedBy, rankOf } from './match.js';
import { pattern } from './pass.js';

interface Found {
  add: Node;
  matmul: Node;
  bias: Value;
}

/** Static shape of the bias when it broadcasts to [N] or [1, N] (every dim 1, the last one 1 or N). */
function isRowBias(v: Value, n: number): boolean {
  const t = v.type;
  if (t?.kind !== 'tensor' || !t.shape || t.shape.length > 2) return false;
  const s = t.shape;
  return s.every((d, i) => d === 1 || (i === s.length - 1 && d === n));
}

/** True when `v` is defined before `node` in its graph (so `node` may read it). */
function definedBefore(v: Value, node: Node): boolean {
  const p = v.producer;
  if (!p || p.graph !== node.graph) return true;
  const nodes = node.graph.nodes;
  return nodes.indexOf(p) < nodes.indexOf(node);
}

export const fuseMatmulAdd = pattern<Found>({
  name: 'fuse-matmul-add',
  description: 'turns MatMul of a 2-D input by constant weights plus a row bias into Gemm',
  level: 'basic',
  roots: ['Add'],
  match(add, ctx) {
    const out = add.outputs[0];
    if (!out || add.inputs.length !== 2 || ctx.opset < 7 || dtypeOf(out) !== 'float32') return undefined;
    for (const side of [0, 1]) {
      const x = add.input(side);
      const bias = add.input(1 - side);
      const matmul = producedBy(x, 'MatMul');
      if (!matmul || !bias || !hasOneUse(x) || bias === x) continue;
      const b = constantValue(matmul.input(1));
      if (b?.dtype !== 'float32' || b.rank !== 2 || rankOf(matmul.input(0)) !== 2) continue;
      if (dtypeOf(bias) !== 'float32' || !isRowBias(bias, b.dims[1]) || !definedBefore(bias, matmul)) continue;
      if (!canReplace(out, matmul.output())) continue;
      return { add, matmul, bias };
    }
    return undefined;
  },
  apply({ add, matmul, bias }) {
    matmul.opType = 'Gemm';
    matmul.setInput(2, bias);
    bypass(add, matmul.output());
  },
});
