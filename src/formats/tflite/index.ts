/** TensorFlow Lite: the plain-object model, the checked FlatBuffer codec, and the importer into the IR. */
export { importTflite, type TfliteImportOptions, unsupportedOps } from './import.js';
export * from './model.js';
export { readTflite, type TfliteReadOptions } from './read.js';
export { validateTflite } from './validate.js';
export { writeTflite } from './write.js';
