import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rfc3339Nano } from '../../src/oci/state';

// The state's `created`, as runc writes it: RFC 3339 in UTC with nanoseconds, trailing zeros dropped.
describe('rfc3339Nano', () => {
  it('is Date.toISOString with the nanoseconds after its milliseconds, for any instant from 1970 to 9999', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 253402300799999 }), fc.integer({ min: 0, max: 999999 }), (ms, nanos) => {
      const iso = new Date(ms).toISOString();
      const frac = `${iso.slice(20, 23)}${String(nanos).padStart(6, '0')}`.replace(/0+$/, '');
      expect(rfc3339Nano(ms, nanos)).toBe(`${iso.slice(0, 19)}${frac ? `.${frac}` : ''}Z`);
    }), { numRuns: 5000 });
  });

  it('drops a fraction of zeros, and keeps the zeros inside one', () => {
    expect(rfc3339Nano(0, 0)).toBe('1970-01-01T00:00:00Z');
    expect(rfc3339Nano(951782400000, 0)).toBe('2000-02-29T00:00:00Z');
    expect(rfc3339Nano(1796321912007, 1000)).toBe('2026-12-03T18:18:32.007001Z');
    expect(rfc3339Nano(1796321912120, 0)).toBe('2026-12-03T18:18:32.12Z');
  });
});
