/**
 * Recognises a model file by its first bytes, never by its name: a `.onnx` that is really a
 * TFLite flatbuffer is read as TFLite, and random bytes are refused before any parser runs.
 */

export type ModelFormat = 'onnx' | 'tflite' | 'ncnn' | 'coreml';

/** ONNX ModelProto fields: number → wire type (0 varint, 2 length-delimited). */
const ONNX_FIELDS = new Map<number, number>([
  [1, 0],
  [2, 2],
  [3, 2],
  [4, 2],
  [5, 0],
  [6, 2],
  [7, 2],
  [8, 2],
  [14, 2],
  [20, 2],
  [25, 2],
  [26, 2],
]);

interface Field {
  num: number;
  wire: number;
}

/** Reads top-level protobuf field headers, skipping payloads. Stops at the first malformed byte. */
function scanFields(bytes: Uint8Array, max = 64): { fields: Field[]; clean: boolean } {
  const fields: Field[] = [];
  let pos = 0;
  const varint = (): number | undefined => {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= bytes.length) return undefined;
      const b = bytes[pos++];
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return result;
      scale *= 128;
    }
    return undefined;
  };
  while (pos < bytes.length && fields.length < max) {
    const tag = varint();
    if (tag === undefined) return { fields, clean: false };
    const num = Math.floor(tag / 8);
    const wire = tag % 8;
    if (num === 0) return { fields, clean: false };
    fields.push({ num, wire });
    if (wire === 0) {
      if (varint() === undefined) return { fields, clean: false };
    } else if (wire === 2) {
      const len = varint();
      if (len === undefined || pos + len > bytes.length) return { fields, clean: false };
      pos += len;
    } else if (wire === 5) {
      pos += 4;
    } else if (wire === 1) {
      pos += 8;
    } else {
      return { fields, clean: false };
    }
  }
  return { fields, clean: pos <= bytes.length };
}

function looksLikeOnnx(bytes: Uint8Array): boolean {
  const { fields } = scanFields(bytes);
  if (fields.length === 0) return false;
  const valid = fields.filter((f) => ONNX_FIELDS.get(f.num) === f.wire);
  // Every field read so far must be a ModelProto field, and the file must start like one:
  // with ir_version, or with the graph/opsets when a writer orders fields differently.
  if (valid.length !== fields.length) return false;
  return fields.some((f) => f.num === 1 || f.num === 7 || f.num === 8);
}

function looksLikeCoreml(bytes: Uint8Array): boolean {
  const { fields } = scanFields(bytes);
  return fields.length > 0 && fields[0].num === 1 && fields.some((f) => f.num >= 200 && f.wire === 2);
}

export function detectFormat(bytes: Uint8Array): ModelFormat | undefined {
  if (bytes.length >= 8 && String.fromCharCode(bytes[4], bytes[5], bytes[6], bytes[7]) === 'TFL3') return 'tflite';
  if (bytes.length >= 7 && String.fromCharCode(...bytes.subarray(0, 7)) === '7767517') return 'ncnn';
  if (looksLikeCoreml(bytes)) return 'coreml';
  if (looksLikeOnnx(bytes)) return 'onnx';
  return undefined;
}
