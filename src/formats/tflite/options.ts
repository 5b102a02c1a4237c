/**
 * Operator options between the generated FlatBuffer classes and TfliteModel's plain records.
 * TfliteOptions names a union member ('Conv2DOptions') and its fields in the schema's snake_case;
 * the generated object API (`Conv2DOptionsT`) uses camelCase properties with the schema's
 * defaults. Both directions go through that object API, so every member of BuiltinOptions and
 * BuiltinOptions2 is covered by the same few lines and stays in step with schema.fbs.
 */
import type { Builder } from 'flatbuffers';
import * as tfl from './generated/index.js';
import type { TfliteOptions } from './model.js';

type FieldValue = TfliteOptions['fields'][string];

interface Unpackable {
  unpack(): object;
}
interface Packable {
  pack(builder: Builder): number;
}

const GENERATED = tfl as unknown as Record<string, unknown>;

export function snakeToCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

export function camelToSnake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Which union carries a member, and its type code there; undefined for an unknown name. */
export function optionsUnion(type: string): { union: 1 | 2; code: number } | undefined {
  const first = (tfl.BuiltinOptions as unknown as Record<string, unknown>)[type];
  if (typeof first === 'number' && first > 0) return { union: 1, code: first };
  const second = (tfl.BuiltinOptions2 as unknown as Record<string, unknown>)[type];
  if (typeof second === 'number' && second > 0) return { union: 2, code: second };
  return undefined;
}

/** The union member name for a type code, or undefined when the code is not in the schema. */
export function optionsName(union: 1 | 2, code: number): string | undefined {
  const names = (union === 1 ? tfl.BuiltinOptions : tfl.BuiltinOptions2) as unknown as Record<number, unknown>;
  const name = names[code];
  return typeof name === 'string' && name !== 'NONE' ? name : undefined;
}

function plain(value: unknown): FieldValue {
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : Number(v)));
  return undefined;
}

/** Reads a union member (a generated table object positioned in the file) into a TfliteOptions. */
export function unpackOptions(type: string, table: Unpackable): TfliteOptions {
  const fields: TfliteOptions['fields'] = {};
  for (const [key, value] of Object.entries(table.unpack())) {
    const v = plain(value);
    if (v !== undefined) fields[camelToSnake(key)] = v;
  }
  return { type, fields };
}

/** StableHLO option vectors are int64 on the wire except these. */
const STABLEHLO_NARROW_VECTORS = new Set(['precisionConfig', 'calledComputations', 'customAttributes', 'windowReversal']);

/** Writes a TfliteOptions as its union member; returns the union code and the table offset. */
export function packOptions(builder: Builder, options: TfliteOptions): { union: 1 | 2; code: number; offset: number } {
  const where = optionsUnion(options.type);
  const ctor = GENERATED[`${options.type}T`];
  if (where === undefined || typeof ctor !== 'function') {
    throw new Error(`unknown TFLite options table "${options.type}" (not a BuiltinOptions member of schema.fbs)`);
  }
  const object = new (ctor as new () => Packable)() as unknown as Record<string, unknown>;
  for (const [snake, value] of Object.entries(options.fields)) {
    if (value === undefined) continue;
    const key = snakeToCamel(snake);
    if (!(key in object)) throw new Error(`${options.type} has no field "${snake}"`);
    const current = object[key];
    if (Array.isArray(value)) {
      if (key === 'windowReversal') object[key] = value.map((v) => v !== 0);
      else if (options.type.startsWith('Stablehlo') && !STABLEHLO_NARROW_VECTORS.has(key)) object[key] = value.map((v) => BigInt(v));
      else object[key] = value;
    } else if (typeof current === 'bigint') object[key] = BigInt(value as number);
    else if (typeof current === 'boolean') object[key] = Boolean(value);
    else if (typeof current === 'number') object[key] = Number(value);
    else object[key] = value;
  }
  return { ...where, offset: (object as unknown as Packable).pack(builder) };
}
