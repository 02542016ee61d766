/**
 * Reading a JSON document field by field: every value's JSON path is
 * known, so a wrong type, a missing field or a field tsns-oci does not
 * know is one error naming that path, never silently ignored.
 */
import { TsnsError } from '../errors';
import type { JsonValue } from '../seccomp/json';

export type Obj = { [key: string]: JsonValue };

export class ConfigError extends TsnsError {
  constructor(source: string, path: string, message: string, hint?: string) {
    super(`${source}: ${path}: ${message}`, { stage: 'plan', ...(hint ? { hint } : {}) });
  }
}

export class Node {
  constructor(readonly source: string, readonly path: string, readonly value: JsonValue | undefined) {}

  fail(message: string, hint?: string): never {
    throw new ConfigError(this.source, this.path, message, hint);
  }

  child(key: string | number): Node {
    const v = this.value as Obj | JsonValue[] | undefined;
    const value = v === undefined || v === null ? undefined : (v as Record<string | number, JsonValue>)[key];
    return new Node(this.source, typeof key === 'number' ? `${this.path}[${key}]` : this.path ? `${this.path}.${key}` : key, value);
  }

  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  /** An object whose keys are all among `known` (the others are errors). */
  object(known: readonly string[], unsupported: Record<string, string> = {}): this {
    if (!this.present) return this;
    if (typeof this.value !== 'object' || Array.isArray(this.value)) this.fail(`expected an object, found ${kind(this.value)}`);
    for (const key of Object.keys(this.value as Obj)) {
      const why = unsupported[key];
      const v = (this.value as Obj)[key];
      if (why !== undefined && v !== null && !(Array.isArray(v) && v.length === 0) && v !== '' && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0)) {
        this.child(key).fail(`not supported: ${why}`);
      }
      if (why === undefined && !known.includes(key)) this.child(key).fail('unknown field', `tsns-oci reads runtime-spec 1.2; known here: ${known.join(', ')}`);
    }
    return this;
  }

  str(fallback?: string): string {
    if (!this.present) {
      if (fallback === undefined) this.fail('missing');
      return fallback;
    }
    if (typeof this.value !== 'string') this.fail(`expected a string, found ${kind(this.value)}`);
    return this.value;
  }

  optStr(): string | undefined {
    return this.present ? this.str() : undefined;
  }

  bool(fallback = false): boolean {
    if (!this.present) return fallback;
    if (typeof this.value !== 'boolean') this.fail(`expected true or false, found ${kind(this.value)}`);
    return this.value;
  }

  /** An integer in [min, max]; a bigint beyond 2^53 only where max allows it. */
  int(min: number, max: number, fallback?: number): number {
    if (!this.present) {
      if (fallback === undefined) this.fail('missing');
      return fallback;
    }
    const v = typeof this.value === 'bigint' ? Number(this.value) : this.value;
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(`expected an integer, found ${kind(this.value)}`);
    if (v < min || v > max) this.fail(`${v} is out of range (${min} to ${max})`);
    return v;
  }

  optInt(min: number, max: number): number | undefined {
    return this.present ? this.int(min, max) : undefined;
  }

  /** A 64-bit unsigned value (rlimits): exact, as a bigint. */
  u64(): bigint {
    if (typeof this.value === 'bigint') return this.value;
    if (typeof this.value === 'number' && Number.isInteger(this.value) && this.value >= 0) return BigInt(this.value);
    this.fail(this.present ? `expected an unsigned integer, found ${kind(this.value)}` : 'missing');
  }

  array(): Node[] {
    if (!this.present) return [];
    if (!Array.isArray(this.value)) this.fail(`expected an array, found ${kind(this.value)}`);
    return this.value.map((_, i) => this.child(i));
  }

  strings(): string[] {
    return this.array().map((n) => n.str());
  }

  /** An object of strings (annotations, sysctl). */
  stringMap(): Record<string, string> {
    if (!this.present) return {};
    if (typeof this.value !== 'object' || Array.isArray(this.value)) this.fail(`expected an object, found ${kind(this.value)}`);
    return Object.fromEntries(Object.keys(this.value as Obj).map((k) => [k, this.child(k).str()]));
  }
}

function kind(v: JsonValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'bigint') return 'a number';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}
