/**
 * Quantization, as a library call:
 *
 *   const data = openDataset('fashion-mnist:train', { input: model.graph.inputs[0] });
 *   const report = await quantizeModel(model, { scheme: 'uint8', calib: data, backend: nodeBackend() });
 *
 * The model is rewritten in place (QDQ form for the static int8 schemes); the report says what
 * was quantized, what stayed float and why, the scales, and the weight bytes before and after.
 */
import type { Model } from '../ir/graph.js';
import { findScheme, type QuantizeOptions, type QuantizeReport } from './schemes.js';

export { CALIBRATION_METHODS, type CalibrationMethod, isCalibrationMethod } from './observers.js';
export { findScheme, type QuantizeOptions, type QuantizeReport, SCHEMES, type Scheme, schemeNames } from './schemes.js';

export async function quantizeModel(model: Model, options: QuantizeOptions): Promise<QuantizeReport> {
  const { scheme, param } = findScheme(options.scheme ?? 'uint8');
  return scheme.quantize(model, { ...options, scheme: options.scheme ?? scheme.name }, param);
}
