/**
 * A TensorFlow Lite model as plain TypeScript objects: the seam between the flatbuffer codec
 * (`read.ts` bytes → TfliteModel, `write.ts` TfliteModel → bytes) and the translators
 * (`import.ts` TfliteModel → IR, `export/` IR → TfliteModel).
 *
 * It mirrors the TFLite schema (tensorflow/lite/schema/schema.fbs, schema version 3) closely
 * enough that reading and writing are mechanical, but uses our own names and types: enums are the
 * schema's integer values exported as constants, operator options are a tagged record, and
 * buffer payloads are byte views (never arrays of numbers).
 */

/** TensorType values (schema.fbs `enum TensorType : byte`). */
export const TensorType = {
  FLOAT32: 0,
  FLOAT16: 1,
  INT32: 2,
  UINT8: 3,
  INT64: 4,
  STRING: 5,
  BOOL: 6,
  INT16: 7,
  COMPLEX64: 8,
  INT8: 9,
  FLOAT64: 10,
  COMPLEX128: 11,
  UINT64: 12,
  RESOURCE: 13,
  VARIANT: 14,
  UINT32: 15,
  UINT16: 16,
  INT4: 17,
  BFLOAT16: 18,
} as const;
export type TensorTypeValue = (typeof TensorType)[keyof typeof TensorType];

/** Padding and ActivationFunctionType values used by many builtin options. */
export const Padding = { SAME: 0, VALID: 1 } as const;
export const Activation = { NONE: 0, RELU: 1, RELU_N1_TO_1: 2, RELU6: 3, TANH: 4, SIGN_BIT: 5 } as const;
export type ActivationValue = (typeof Activation)[keyof typeof Activation];

/** Per-tensor or per-axis affine quantization: real = scale · (q − zeroPoint). */
export interface TfliteQuantization {
  scale: Float32Array;
  /** int64 in the schema; zero points fit in a JS number. */
  zeroPoint: number[];
  /** Axis of `scale`/`zeroPoint` when there is more than one (per-channel). */
  quantizedDimension: number;
  min?: Float32Array;
  max?: Float32Array;
}

/** One index vector of a sparse dimension, with the integer width the file stores it in. */
export interface TfliteSparseIndices {
  type: 'int32' | 'uint16' | 'uint8';
  values: number[];
}

/**
 * A sparse constant's layout (schema.fbs SparsityParameters): the traversal order of the n tensor
 * dims then the k block dims, the tensor dim each block dim splits, and per traversed dim either
 * its dense size or CSR-style segments and indices. The buffer holds only the stored values.
 */
export interface TfliteSparsity {
  traversalOrder: number[];
  blockMap: number[];
  dimMetadata: { format: 'dense' | 'csr'; denseSize: number; segments?: TfliteSparseIndices; indices?: TfliteSparseIndices }[];
}

export interface TfliteTensor {
  name: string;
  shape: number[];
  /** The schema's `shape_signature`: −1 marks a dynamic dim. Absent when the shape is static. */
  shapeSignature?: number[];
  type: TensorTypeValue;
  /** Index into `TfliteModel.buffers`; buffer 0 is the empty sentinel (no constant data). */
  buffer: number;
  quantization?: TfliteQuantization;
  isVariable?: boolean;
  /** Set on sparse constants (e.g. pruned weights read by a DENSIFY op). */
  sparsity?: TfliteSparsity;
}

/**
 * An operator's options: `type` is the schema's BuiltinOptions (or BuiltinOptions2) union member
 * name, e.g. 'Conv2DOptions', and `fields` its fields in the schema's snake_case names, e.g.
 * `{ padding: 0, stride_w: 1, stride_h: 1, fused_activation_function: 1 }`. Vectors are arrays.
 */
export interface TfliteOptions {
  type: string;
  fields: Record<string, number | boolean | string | number[] | undefined>;
}

export interface TfliteOperator {
  /** Index into `TfliteModel.operatorCodes`. */
  opcodeIndex: number;
  /** Tensor indices; −1 marks an omitted optional input (e.g. no bias). */
  inputs: number[];
  outputs: number[];
  options?: TfliteOptions;
  /** Raw flexbuffer bytes of a custom op's options, kept so a round trip does not lose them. */
  customOptions?: Uint8Array;
  intermediates?: number[];
}

export interface TfliteOperatorCode {
  /** BuiltinOperator value (the larger of deprecated_builtin_code and builtin_code on read). */
  builtinCode: number;
  /** Set only for BuiltinOperator.CUSTOM (32). */
  customCode?: string;
  version: number;
}

export interface TfliteSubgraph {
  name?: string;
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfliteOperator[];
}

export interface TfliteSignatureDef {
  signatureKey: string;
  subgraphIndex: number;
  /** name the user sees → tensor index in that subgraph. */
  inputs: { name: string; tensorIndex: number }[];
  outputs: { name: string; tensorIndex: number }[];
}

export interface TfliteMetadata {
  name: string;
  buffer: number;
}

export interface TfliteModel {
  /** Schema version; 3 for every file written today. */
  version: number;
  description?: string;
  operatorCodes: TfliteOperatorCode[];
  subgraphs: TfliteSubgraph[];
  /** Constant payloads. Index 0 must be the empty buffer. */
  buffers: Uint8Array[];
  signatureDefs: TfliteSignatureDef[];
  metadata: TfliteMetadata[];
}

/** The BuiltinOperator codes the exporter and importer name most (schema.fbs `enum BuiltinOperator`). */
export const Builtin = {
  ADD: 0,
  AVERAGE_POOL_2D: 1,
  CONCATENATION: 2,
  CONV_2D: 3,
  DEPTHWISE_CONV_2D: 4,
  DEPTH_TO_SPACE: 5,
  DEQUANTIZE: 6,
  EMBEDDING_LOOKUP: 7,
  FLOOR: 8,
  FULLY_CONNECTED: 9,
  HASHTABLE_LOOKUP: 10,
  L2_NORMALIZATION: 11,
  L2_POOL_2D: 12,
  LOCAL_RESPONSE_NORMALIZATION: 13,
  LOGISTIC: 14,
  LSH_PROJECTION: 15,
  LSTM: 16,
  MAX_POOL_2D: 17,
  MUL: 18,
  RELU: 19,
  RELU_N1_TO_1: 20,
  RELU6: 21,
  RESHAPE: 22,
  RESIZE_BILINEAR: 23,
  RNN: 24,
  SOFTMAX: 25,
  SPACE_TO_DEPTH: 26,
  SVDF: 27,
  TANH: 28,
  CONCAT_EMBEDDINGS: 29,
  SKIP_GRAM: 30,
  CALL: 31,
  CUSTOM: 32,
  EMBEDDING_LOOKUP_SPARSE: 33,
  PAD: 34,
  UNIDIRECTIONAL_SEQUENCE_RNN: 35,
  GATHER: 36,
  BATCH_TO_SPACE_ND: 37,
  SPACE_TO_BATCH_ND: 38,
  TRANSPOSE: 39,
  MEAN: 40,
  SUB: 41,
  DIV: 42,
  SQUEEZE: 43,
  UNIDIRECTIONAL_SEQUENCE_LSTM: 44,
  STRIDED_SLICE: 45,
  BIDIRECTIONAL_SEQUENCE_RNN: 46,
  EXP: 47,
  TOPK_V2: 48,
  SPLIT: 49,
  LOG_SOFTMAX: 50,
  DELEGATE: 51,
  BIDIRECTIONAL_SEQUENCE_LSTM: 52,
  CAST: 53,
  PRELU: 54,
  MAXIMUM: 55,
  ARG_MAX: 56,
  MINIMUM: 57,
  LESS: 58,
  NEG: 59,
  PADV2: 60,
  GREATER: 61,
  GREATER_EQUAL: 62,
  LESS_EQUAL: 63,
  SELECT: 64,
  SLICE: 65,
  SIN: 66,
  TRANSPOSE_CONV: 67,
  SPARSE_TO_DENSE: 68,
  TILE: 69,
  EXPAND_DIMS: 70,
  EQUAL: 71,
  NOT_EQUAL: 72,
  LOG: 73,
  SUM: 74,
  SQRT: 75,
  RSQRT: 76,
  SHAPE: 77,
  POW: 78,
  ARG_MIN: 79,
  FAKE_QUANT: 80,
  REDUCE_PROD: 81,
  REDUCE_MAX: 82,
  PACK: 83,
  LOGICAL_OR: 84,
  ONE_HOT: 85,
  LOGICAL_AND: 86,
  LOGICAL_NOT: 87,
  UNPACK: 88,
  REDUCE_MIN: 89,
  FLOOR_DIV: 90,
  REDUCE_ANY: 91,
  SQUARE: 92,
  ZEROS_LIKE: 93,
  FILL: 94,
  FLOOR_MOD: 95,
  RANGE: 96,
  RESIZE_NEAREST_NEIGHBOR: 97,
  LEAKY_RELU: 98,
  SQUARED_DIFFERENCE: 99,
  MIRROR_PAD: 100,
  ABS: 101,
  SPLIT_V: 102,
  UNIQUE: 103,
  CEIL: 104,
  REVERSE_V2: 105,
  ADD_N: 106,
  GATHER_ND: 107,
  COS: 108,
  WHERE: 109,
  RANK: 110,
  ELU: 111,
  REVERSE_SEQUENCE: 112,
  MATRIX_DIAG: 113,
  QUANTIZE: 114,
  MATRIX_SET_DIAG: 115,
  ROUND: 116,
  HARD_SWISH: 117,
  IF: 118,
  WHILE: 119,
  NON_MAX_SUPPRESSION_V4: 120,
  NON_MAX_SUPPRESSION_V5: 121,
  SCATTER_ND: 122,
  SELECT_V2: 123,
  DENSIFY: 124,
  SEGMENT_SUM: 125,
  BATCH_MATMUL: 126,
  PLACEHOLDER_FOR_GREATER_OP_CODES: 127,
  CUMSUM: 128,
  CALL_ONCE: 129,
  BROADCAST_TO: 130,
  RFFT2D: 131,
  CONV_3D: 132,
  IMAG: 133,
  REAL: 134,
  COMPLEX_ABS: 135,
  HASHTABLE: 136,
  HASHTABLE_FIND: 137,
  HASHTABLE_IMPORT: 138,
  HASHTABLE_SIZE: 139,
  REDUCE_ALL: 140,
  CONV_3D_TRANSPOSE: 141,
  VAR_HANDLE: 142,
  READ_VARIABLE: 143,
  ASSIGN_VARIABLE: 144,
  BROADCAST_ARGS: 145,
  RANDOM_STANDARD_NORMAL: 146,
  BUCKETIZE: 147,
  RANDOM_UNIFORM: 148,
  MULTINOMIAL: 149,
  GELU: 150,
  DYNAMIC_UPDATE_SLICE: 151,
  RELU_0_TO_1: 152,
  UNSORTED_SEGMENT_PROD: 153,
  UNSORTED_SEGMENT_MAX: 154,
  UNSORTED_SEGMENT_SUM: 155,
  ATAN2: 156,
  UNSORTED_SEGMENT_MIN: 157,
  SIGN: 158,
  BITCAST: 159,
  BITWISE_XOR: 160,
  RIGHT_SHIFT: 161,
  STABLEHLO_LOGISTIC: 162,
  STABLEHLO_ADD: 163,
  STABLEHLO_DIVIDE: 164,
  STABLEHLO_MULTIPLY: 165,
  STABLEHLO_MAXIMUM: 166,
  STABLEHLO_RESHAPE: 167,
  STABLEHLO_CLAMP: 168,
  STABLEHLO_CONCATENATE: 169,
  STABLEHLO_BROADCAST_IN_DIM: 170,
  STABLEHLO_CONVOLUTION: 171,
  STABLEHLO_SLICE: 172,
  STABLEHLO_CUSTOM_CALL: 173,
  STABLEHLO_REDUCE: 174,
  STABLEHLO_ABS: 175,
  STABLEHLO_AND: 176,
  STABLEHLO_COSINE: 177,
  STABLEHLO_EXPONENTIAL: 178,
  STABLEHLO_FLOOR: 179,
  STABLEHLO_LOG: 180,
  STABLEHLO_MINIMUM: 181,
  STABLEHLO_NEGATE: 182,
  STABLEHLO_OR: 183,
  STABLEHLO_POWER: 184,
  STABLEHLO_REMAINDER: 185,
  STABLEHLO_RSQRT: 186,
  STABLEHLO_SELECT: 187,
  STABLEHLO_SUBTRACT: 188,
  STABLEHLO_TANH: 189,
  STABLEHLO_SCATTER: 190,
  STABLEHLO_COMPARE: 191,
  STABLEHLO_CONVERT: 192,
  STABLEHLO_DYNAMIC_SLICE: 193,
  STABLEHLO_DYNAMIC_UPDATE_SLICE: 194,
  STABLEHLO_PAD: 195,
  STABLEHLO_IOTA: 196,
  STABLEHLO_DOT_GENERAL: 197,
  STABLEHLO_REDUCE_WINDOW: 198,
  STABLEHLO_SORT: 199,
  STABLEHLO_WHILE: 200,
  STABLEHLO_GATHER: 201,
  STABLEHLO_TRANSPOSE: 202,
  DILATE: 203,
  STABLEHLO_RNG_BIT_GENERATOR: 204,
  REDUCE_WINDOW: 205,
  STABLEHLO_COMPOSITE: 206,
  COMPLEX: 207,
} as const;

const BUILTIN_NAMES = new Map<number, string>(Object.entries(Builtin).map(([name, code]) => [code, name]));

/** 'CONV_2D' for 3; 'BUILTIN_200' for a code newer than this table. */
export function builtinName(code: number): string {
  return BUILTIN_NAMES.get(code) ?? `BUILTIN_${code}`;
}

/** The empty model every writer starts from: buffer 0 is the schema's required empty sentinel. */
export function emptyModel(description = 'mobilize'): TfliteModel {
  return { version: 3, description, operatorCodes: [], subgraphs: [], buffers: [new Uint8Array(0)], signatureDefs: [], metadata: [] };
}
