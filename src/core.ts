/**
 * The browser-safe core of the library: IR, formats (from and to bytes), op rules, shape
 * inference, verification, the reference interpreter and the figures. Nothing here touches the
 * file system or Node's modules; `index.ts` adds file I/O and onnxruntime-node on top.
 */

export { ArrayDataset } from './data/arrays.js';
export { type Batch, type BatchOptions, batches, type Dataset, sampleOrder } from './data/dataset.js';
export { isNpy, parseNpy, serializeNpy } from './data/npy.js';
export { badInput, checkFailed, isMobilizeError, MobilizeError } from './errors.js';
export { type ModelStats, modelStats, nodeMacs } from './eval/stats.js';
export { summarize, type TensorSummary } from './eval/summary.js';
export { detectFormat, formatName, type ModelFormat, readModel } from './formats/index.js';
export { type ExternalDataResolver, type ReadOptions, readOnnx, readTensorProto } from './formats/onnx/read.js';
export { needsExternalData, type WriteOptions, type WrittenModel, writeOnnx, writeTensorProto } from './formats/onnx/write.js';
export { type AttrInput, type Attribute, attr } from './ir/attributes.js';
export { type BuilderOptions, irVersionForOpset, ModelBuilder, type OpOptions } from './ir/builder.js';
export { broadcastShapes, dimDiv, dimEquals, dimMul, dimProduct } from './ir/dims.js';
export { ALL_DTYPES, type DType, isDType, type TypedArray } from './ir/dtype.js';
export { Graph, isOnnxDomain, Model, type ModelFunction, Node, type Use, Value } from './ir/graph.js';
export { printGraph, printModel, printNode } from './ir/print.js';
export { type Metadata, type SparseTensor, shapeSize, Tensor } from './ir/tensor.js';
export type { Dim, Shape, TensorType, ValueType } from './ir/types.js';
export { formatShape, formatType, tensorType } from './ir/types.js';
export { MAX_TARGET_OPSET, MIN_TARGET_OPSET, type UpgradeReport, upgradeOpset } from './ir/upgrade/index.js';
export { assertValid, type VerifyIssue, verifyModel } from './ir/verify.js';
export { BUILTIN_MODELS, buildFmnistCnn, buildFmnistSmall } from './models/fmnist.js';
export { type ConvOptions, heNormal, NetBuilder, type NetOptions } from './models/layers.js';
export { defaultRegistry, type InferContext, type KernelContext, OpRegistry, type OpSchema } from './ops/index.js';
export { applyInputShapes, type InferOptions, type InferReport, inferShapes } from './ops/infer.js';
export { type InspectReport, inspectModel } from './pipeline/inspect.js';
export { type RunOptions, type RunResult, runModel } from './pipeline/run.js';
export type { Backend, Feeds, OptimizationLevel, Session, SessionOptions } from './runtime/backend.js';
export { checkFeeds, randomFeeds } from './runtime/feeds.js';
export type { OrtModule } from './runtime/ort.js';
export { Interpreter, referenceBackend } from './runtime/reference.js';
export * from './train/index.js';
