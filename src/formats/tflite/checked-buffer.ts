/**
 * A flatbuffers ByteBuffer that refuses to read outside the file. The `flatbuffers` library trusts
 * every offset it follows; a hostile .tflite can point anywhere, claim vectors of 2^31 elements or
 * make thousands of tables share one huge vector. Every read the generated code makes goes through
 * here, so one class bounds them all: each read must lie inside the bytes, each vector must fit in
 * what remains after its start, and the total number of reads has a budget proportional to the
 * file's size (a real file reads each field about once; weight payloads are taken as views, not
 * read element by element), so no file can make the reader loop for long.
 */
import { ByteBuffer, type Encoding } from 'flatbuffers';

/** Thrown by the checked reads; read.ts turns it into a one-line bad-input error. */
export class FlatbufferFault extends Error {}

export class CheckedByteBuffer extends ByteBuffer {
  private budget: number;
  private readonly size: number;

  constructor(bytes: Uint8Array) {
    super(bytes);
    this.size = bytes.length;
    this.budget = 4_000_000 + 32 * bytes.length;
  }

  /** Fails unless `[offset, offset + width)` lies inside the file; charges one read. */
  check(offset: number, width: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + width > this.size) {
      throw new FlatbufferFault(`an offset points outside the file (byte ${offset} of ${this.size})`);
    }
    if (--this.budget < 0)
      throw new FlatbufferFault('the file makes the reader revisit the same data too often (shared or cyclic offsets)');
  }

  /** Charges `n` reads at once (for bulk views of vectors). */
  charge(n: number): void {
    this.budget -= n;
    if (this.budget < 0) throw new FlatbufferFault('the file makes the reader revisit the same data too often (shared or cyclic offsets)');
  }

  override readInt8(offset: number): number {
    this.check(offset, 1);
    return super.readInt8(offset);
  }
  override readUint8(offset: number): number {
    this.check(offset, 1);
    return super.readUint8(offset);
  }
  override readInt16(offset: number): number {
    this.check(offset, 2);
    return super.readInt16(offset);
  }
  override readUint16(offset: number): number {
    this.check(offset, 2);
    return super.readUint16(offset);
  }
  override readInt32(offset: number): number {
    this.check(offset, 4);
    return super.readInt32(offset);
  }
  override readUint32(offset: number): number {
    this.check(offset, 4);
    return super.readUint32(offset);
  }
  override readInt64(offset: number): bigint {
    this.check(offset, 8);
    return super.readInt64(offset);
  }
  override readUint64(offset: number): bigint {
    this.check(offset, 8);
    return super.readUint64(offset);
  }
  override readFloat32(offset: number): number {
    this.check(offset, 4);
    return super.readFloat32(offset);
  }
  override readFloat64(offset: number): number {
    this.check(offset, 8);
    return super.readFloat64(offset);
  }

  /** A vector's element count, checked to fit (at one byte per element) before the file's end. */
  override __vector_len(offset: number): number {
    const len = super.__vector_len(offset);
    const start = this.__vector(offset);
    if (len < 0 || start + len > this.size) throw new FlatbufferFault(`a vector of ${len} elements runs past the end of the file`);
    return len;
  }

  override __string(offset: number, encoding?: Encoding): string | Uint8Array {
    const at = offset + this.readInt32(offset);
    const len = this.readInt32(at);
    if (len < 0 || at + 4 + len > this.size) throw new FlatbufferFault(`a string of ${len} bytes runs past the end of the file`);
    this.charge(len >> 4);
    return super.__string(offset, encoding);
  }

  /** Byte range of a vector of `width`-byte elements, checked to lie inside the file. */
  vectorRange(offset: number, width: number): { start: number; length: number } {
    const length = this.__vector_len(offset);
    const start = this.__vector(offset);
    if (start + length * width > this.size) throw new FlatbufferFault(`a vector of ${length} elements runs past the end of the file`);
    return { start, length };
  }
}
