/** Library entry for Node: the core, file I/O, and onnxruntime-node as the backend. */
export * from './core.js';
export { FASHION_MNIST_CLASSES, fashionMnistAvailable, loadFashionMnist } from './data/fashion-mnist.js';
export { assertNotInput, loadModel, readFileBytes, type SavedModel, type SaveOptions, saveModel, writeAtomically } from './io/files.js';
export { buildFmnistCnn } from './models/fmnist.js';
export { type DemoReport, runDemo } from './pipeline/demo.js';
export { nodeBackend } from './runtime/node.js';
