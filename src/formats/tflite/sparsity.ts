/** SparsityParameters between the generated object API and TfliteModel's TfliteSparsity. */
import type { Builder } from 'flatbuffers';
import * as tfl from './generated/index.js';
import type { TfliteSparseIndices, TfliteSparsity } from './model.js';

const INDEX_TYPES: Record<number, TfliteSparseIndices['type']> = {
  [tfl.SparseIndexVector.Int32Vector]: 'int32',
  [tfl.SparseIndexVector.Uint16Vector]: 'uint16',
  [tfl.SparseIndexVector.Uint8Vector]: 'uint8',
};

function indices(type: tfl.SparseIndexVector, vector: { values: number[] } | null): TfliteSparseIndices | undefined {
  const name = INDEX_TYPES[type];
  return name === undefined || vector === null ? undefined : { type: name, values: vector.values };
}

export function sparsityFromTable(table: tfl.SparsityParameters): TfliteSparsity {
  const t = table.unpack();
  return {
    traversalOrder: t.traversalOrder,
    blockMap: t.blockMap,
    dimMetadata: t.dimMetadata.map((d) => ({
      format: d.format === tfl.DimensionType.SPARSE_CSR ? 'csr' : 'dense',
      denseSize: d.denseSize,
      segments: indices(d.arraySegmentsType, d.arraySegments),
      indices: indices(d.arrayIndicesType, d.arrayIndices),
    })),
  };
}

function indexVector(
  v: TfliteSparseIndices | undefined,
): [tfl.SparseIndexVector, tfl.Int32VectorT | tfl.Uint16VectorT | tfl.Uint8VectorT | null] {
  if (v === undefined) return [tfl.SparseIndexVector.NONE, null];
  if (v.type === 'int32') return [tfl.SparseIndexVector.Int32Vector, new tfl.Int32VectorT(v.values)];
  if (v.type === 'uint16') return [tfl.SparseIndexVector.Uint16Vector, new tfl.Uint16VectorT(v.values)];
  return [tfl.SparseIndexVector.Uint8Vector, new tfl.Uint8VectorT(v.values)];
}

export function packSparsity(builder: Builder, s: TfliteSparsity): number {
  const dims = s.dimMetadata.map((d) => {
    const [segType, seg] = indexVector(d.segments);
    const [idxType, idx] = indexVector(d.indices);
    const format = d.format === 'csr' ? tfl.DimensionType.SPARSE_CSR : tfl.DimensionType.DENSE;
    return new tfl.DimensionMetadataT(format, d.denseSize, segType, seg, idxType, idx);
  });
  return new tfl.SparsityParametersT(s.traversalOrder, s.blockMap, dims).pack(builder);
}
