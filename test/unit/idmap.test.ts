import { describe, expect, it } from 'vitest';
import { formatIdMap, IdMapError, MAX_MAP_LINES, parseIdMap, validateIdMap } from '../../src/idmap';

describe('id maps', () => {
  it('formats one line per range, newline-terminated, for a single write', () => {
    expect(formatIdMap([{ inner: 0, outer: 1000, count: 1 }, { inner: 1, outer: 100000, count: 65536 }])).toBe(
      '0 1000 1\n1 100000 65536\n',
    );
  });

  it('parses the kernel\'s column-aligned text', () => {
    expect(parseIdMap('         0       1000          1\n         1     100000      65536\n')).toEqual([
      { inner: 0, outer: 1000, count: 1 },
      { inner: 1, outer: 100000, count: 65536 },
    ]);
    expect(parseIdMap('')).toEqual([]);
    expect(() => parseIdMap('0 1000')).toThrow(IdMapError);
    expect(() => parseIdMap('0 -1 1')).toThrow(IdMapError);
  });

  it('round-trips', () => {
    const m = [{ inner: 5, outer: 7, count: 9 }];
    expect(parseIdMap(formatIdMap(m))).toEqual(m);
  });

  it('accepts what the kernel accepts', () => {
    expect(() => validateIdMap([{ inner: 0, outer: 0, count: 4294967295 }])).not.toThrow();
    expect(() => validateIdMap([{ inner: 0, outer: 1000, count: 1 }, { inner: 1, outer: 100000, count: 65536 }])).not.toThrow();
    expect(() => validateIdMap(Array.from({ length: MAX_MAP_LINES }, (_, i) => ({ inner: i, outer: i, count: 1 })))).not.toThrow();
  });

  it('refuses a count of 0, overlaps on either side, too many lines, and ids past 2^32-2', () => {
    expect(() => validateIdMap([{ inner: 0, outer: 0, count: 0 }])).toThrow(/count of 0/);
    expect(() => validateIdMap([{ inner: 0, outer: 0, count: 10 }, { inner: 5, outer: 100, count: 1 }])).toThrow(/overlap inside/);
    expect(() => validateIdMap([{ inner: 0, outer: 0, count: 10 }, { inner: 100, outer: 9, count: 1 }])).toThrow(/overlap outside/);
    expect(() => validateIdMap(Array.from({ length: MAX_MAP_LINES + 1 }, (_, i) => ({ inner: i, outer: i, count: 1 })))).toThrow(/at most 340/);
    expect(() => validateIdMap([{ inner: 4294967295, outer: 0, count: 1 }])).toThrow(/largest id inside/);
    expect(() => validateIdMap([{ inner: 0, outer: 4294967290, count: 10 }])).toThrow(/largest id outside/);
  });
});
