import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { printModel } from '../../src/ir/print.js';
import { smallConvNet } from '../helpers.js';

describe('text printer', () => {
  it('prints one readable line per node (golden)', () => {
    const expected = `model ir=7 opset=ai.onnx:13 producer=mobilize
graph small (%x: float32[N,3,8,8]) -> (%logits: float32[N,5]) {
  init %w: float32[4,3,3,3]
  init %fc_w: float32[4,5]
  init %fc_b: float32[5]
  %conv_out = Conv "conv"(%x, %w) {kernel_shape=[3,3], pads=[1,1,1,1]}
  %relu_out = Relu "relu"(%conv_out)
  %gap_out = GlobalAveragePool "gap"(%relu_out)
  %flatten_out = Flatten "flatten"(%gap_out) {axis=1}
  %logits = Gemm "fc"(%flatten_out, %fc_w, %fc_b)
}
`;
    assert.equal(printModel(smallConvNet(), { maxElements: 0 }), expected);
  });
});
