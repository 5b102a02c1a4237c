/** Library entry for Node: the core, file I/O, and onnxruntime-node as the backend. */
export * from './core.js';
export type { Batch, Dataset } from './data/dataset.js';
export { FASHION_MNIST_CLASSES, fashionMnistAvailable, loadFashionMnist } from './data/fashion-mnist.js';
export { type DatasetOptions, openDataset } from './data/spec.js';
export { type CompareResult, compareOnData, type TensorAgreement } from './eval/agreement.js';
export { type LatencyOptions, type LatencyResult, measureLatency } from './eval/latency.js';
export { assertNotInput, loadModel, readFileBytes, type SavedModel, type SaveOptions, saveModel, writeAtomically } from './io/files.js';
export { buildFmnistCnn } from './models/fmnist.js';
export { type DemoReport, runDemo } from './pipeline/demo.js';
export {
  CALIBRATION_METHODS,
  type CalibrationMethod,
  type QuantizeOptions,
  type QuantizeReport,
  quantizeModel,
  SCHEMES,
  type Scheme,
} from './quantize/index.js';
export { compareLayers, type LayerAgreement, matchLayers } from './quantize/layers.js';
export { nodeBackend } from './runtime/node.js';
