/**
 * Expands a sparse TFLite constant (SparsityParameters, a TACO-style layout) into its dense
 * bytes, so DENSIFY ops become plain constants. Every index is checked against the dense shape
 * and every segment against its vector, so a hostile file cannot write outside the output.
 */
import { badInput } from '../../../errors.js';
import type { TfliteTensor } from '../model.js';

export function densify(t: TfliteTensor, values: Uint8Array, width: number, where: string): Uint8Array {
  const s = t.sparsity!;
  const n = t.shape.length;
  const k = s.blockMap.length;
  const fail = (why: string): never => {
    throw badInput(`${where}: sparse tensor "${t.name}" ${why}`);
  };
  if (s.traversalOrder.length !== n + k || s.dimMetadata.length !== n + k) fail('has inconsistent sparsity metadata');
  // Size of each expanded dim: the n tensor dims (divided by their block size) then the k block dims.
  const blockSize = new Array<number>(n).fill(1);
  const blockOf = new Array<number>(n).fill(-1);
  const sizes = new Array<number>(n + k).fill(0);
  s.traversalOrder.forEach((dim, level) => {
    if (dim < 0 || dim >= n + k) fail(`traverses dim ${dim} of ${n + k}`);
    const meta = s.dimMetadata[level];
    if (meta.format === 'dense') sizes[dim] = meta.denseSize;
  });
  s.blockMap.forEach((dim, j) => {
    if (dim < 0 || dim >= n) fail(`blocks dim ${dim} of ${n}`);
    if (sizes[n + j] <= 0) fail('has a block dim that is not dense');
    blockSize[dim] = sizes[n + j];
    blockOf[dim] = j;
  });
  for (let d = 0; d < n; d++) {
    if (t.shape[d] % blockSize[d] !== 0) fail(`has block size ${blockSize[d]} that does not divide dim ${d}`);
    sizes[d] = t.shape[d] / blockSize[d];
  }
  s.traversalOrder.forEach((dim, level) => {
    const meta = s.dimMetadata[level];
    if (meta.format === 'dense' && meta.denseSize !== sizes[dim]) fail(`gives dim ${dim} size ${meta.denseSize}, expected ${sizes[dim]}`);
  });
  let total = 1;
  for (const d of t.shape) total *= d;
  // Real sparse weights are a few times smaller than dense; a file claiming far more is hostile.
  const limit = Math.min(2 ** 30, Math.max(1 << 24, 256 * values.length));
  if (total * width > limit) fail(`would expand ${values.length} stored bytes to ${total * width}, more than mobilize densifies`);
  const out = new Uint8Array(total * width);
  const strides = new Array<number>(n).fill(1);
  for (let d = n - 2; d >= 0; d--) strides[d] = strides[d + 1] * t.shape[d + 1];
  const coords = new Array<number>(n + k).fill(0);
  let next = 0;
  const stored = values.length / width;

  const visit = (level: number, parent: number): void => {
    if (level === n + k) {
      if (next >= stored) fail('has more positions than stored values');
      let flat = 0;
      for (let d = 0; d < n; d++) flat += (blockOf[d] < 0 ? coords[d] : coords[d] * blockSize[d] + coords[n + blockOf[d]]) * strides[d];
      out.set(values.subarray(next * width, (next + 1) * width), flat * width);
      next++;
      return;
    }
    const dim = s.traversalOrder[level];
    const meta = s.dimMetadata[level];
    if (meta.format === 'dense') {
      for (let i = 0; i < meta.denseSize; i++) {
        coords[dim] = i;
        visit(level + 1, parent * meta.denseSize + i);
      }
      return;
    }
    const seg = meta.segments?.values;
    const idx = meta.indices?.values;
    if (seg === undefined || idx === undefined || parent + 1 >= seg.length) fail('has a compressed dim without its segments');
    const from = seg![parent];
    const to = seg![parent + 1];
    if (!(from >= 0 && from <= to && to <= idx!.length)) fail('has segments outside its index vector');
    for (let p = from; p < to; p++) {
      const c = idx![p];
      if (!(c >= 0 && c < sizes[dim])) fail(`has index ${c} outside dim ${dim}`);
      coords[dim] = c;
      visit(level + 1, p);
    }
  };
  visit(0, 0);
  if (next !== stored) fail(`stores ${stored} values but its layout places ${next}`);
  return out;
}
