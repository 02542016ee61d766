/** One line of /proc/PID/uid_map or gid_map: `inner outer count`. */
export interface IdMapEntry {
  readonly inner: number;
  readonly outer: number;
  readonly count: number;
}

// The kernel accepts at most this many lines in one write (since Linux 4.15).
export const MAX_MAP_LINES = 340;
const MAX_ID = 0xffffffff;

export class IdMapError extends Error {}

/** The text written to a map file; the kernel wants it in a single write. */
export function formatIdMap(entries: readonly IdMapEntry[]): string {
  return entries.map((e) => `${e.inner} ${e.outer} ${e.count}\n`).join('');
}

/** Parse map text as the kernel prints it (columns separated by any whitespace). */
export function parseIdMap(text: string): IdMapEntry[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((line) => {
      const f = line.split(/\s+/);
      if (f.length !== 3 || !f.every((x) => /^\d+$/.test(x))) {
        throw new IdMapError(`malformed id map line '${line}'`);
      }
      return { inner: Number(f[0]), outer: Number(f[1]), count: Number(f[2]) };
    });
}

/** The kernel's rules for a map, checked before anything is created. */
export function validateIdMap(entries: readonly IdMapEntry[], what = 'id map'): void {
  if (entries.length > MAX_MAP_LINES) {
    throw new IdMapError(`${what} has ${entries.length} ranges; the kernel allows at most ${MAX_MAP_LINES}`);
  }
  for (const e of entries) {
    if (!Number.isInteger(e.count) || e.count < 1) {
      throw new IdMapError(`${what} range ${e.inner}:${e.outer}:${e.count} has a count of ${e.count}; it must be at least 1`);
    }
    for (const [side, v] of [['inside', e.inner], ['outside', e.outer]] as const) {
      if (!Number.isInteger(v) || v < 0 || v + e.count - 1 >= MAX_ID) {
        throw new IdMapError(`${what} range ${e.inner}:${e.outer}:${e.count} goes beyond the largest id ${side}`);
      }
    }
  }
  for (const side of ['inner', 'outer'] as const) {
    const sorted = [...entries].sort((a, b) => a[side] - b[side]);
    for (let i = 1; i < sorted.length; i++) {
      const prev = sorted[i - 1]!;
      const cur = sorted[i]!;
      if (prev[side] + prev.count > cur[side]) {
        throw new IdMapError(
          `${what} ranges ${prev.inner}:${prev.outer}:${prev.count} and ${cur.inner}:${cur.outer}:${cur.count} overlap ${side === 'inner' ? 'inside' : 'outside'}`,
        );
      }
    }
  }
}
