/** Op schemas by (domain, op type). Built on first use; a duplicate entry is a programming error. */
import type { OpSchema } from './schema.js';

export class OpRegistry {
  private readonly byKey = new Map<string, OpSchema>();

  constructor(schemas: Iterable<OpSchema> = []) {
    for (const s of schemas) this.add(s);
  }

  private static key(domain: string, op: string): string {
    return `${domain === 'ai.onnx' ? '' : domain}::${op}`;
  }

  add(schema: OpSchema): void {
    const key = OpRegistry.key(schema.domain ?? '', schema.op);
    if (this.byKey.has(key)) throw new Error(`op ${schema.domain ? `${schema.domain}.` : ''}${schema.op} is registered twice`);
    this.byKey.set(key, schema);
  }

  get(domain: string, op: string): OpSchema | undefined {
    return this.byKey.get(OpRegistry.key(domain, op));
  }

  has(domain: string, op: string): boolean {
    return this.byKey.has(OpRegistry.key(domain, op));
  }

  get size(): number {
    return this.byKey.size;
  }

  *[Symbol.iterator](): IterableIterator<OpSchema> {
    yield* this.byKey.values();
  }
}
