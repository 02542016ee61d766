/**
 * native/wire.h and src/wire.ts are the two sides of one contract: every
 * list the header defines must be the same table on this side.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EXTRA, HARDENING, INDEX_SHIFT, INDEXED_STAGES, LISTENER_SEP, NS_QUERY, OP_SEP, OP_TRY, FD_SOURCE, PID_MARK, PIPE_SHIFT, SANDBOX_OP, SECCOMP_EARLY, STAGE_SHIFT, STAGES, TAG,
  WAIT_EXITED, WAIT_SHIFT, WAIT_SIGNALED, decodeFailure, decodePipe, decodeWaitStatus,
} from '../../src/wire';

const HEADER = readFileSync(join(__dirname, '..', '..', 'native', 'wire.h'), 'utf8')
  // Comments may hold anything, including X(...) and quotes.
  .replace(/\/\*[\s\S]*?\*\//g, '');

/** The X(...) entries of one list macro, each as its argument strings. */
function xList(name: string): string[][] {
  const m = new RegExp(`#define ${name}\\(X\\)((?:[^\\n]*\\\\\\n)*[^\\n]*)`).exec(HEADER);
  if (!m) throw new Error(`native/wire.h has no ${name}(X)`);
  return [...m[1]!.matchAll(/X\(([^)]*)\)/g)].map((x) => x[1]!.split(',').map((a) => a.trim()));
}

/** A C character literal or string literal as JavaScript text. */
function cLiteral(text: string): string {
  const inner = text.slice(1, -1);
  return inner.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

function define(name: string): string {
  const m = new RegExp(`#define ${name} (\\S+)`).exec(HEADER);
  if (!m) throw new Error(`native/wire.h has no ${name}`);
  return m[1]!;
}

const asTable = (entries: string[][]) => Object.fromEntries(entries.map(([name, value]) => [name, cLiteral(value!)]));

describe('the wire contract (native/wire.h ⇔ src/wire.ts)', () => {
  it('has the same spec tags, each a distinct byte', () => {
    expect(TAG).toEqual(asTable(xList('TSNS_TAGS')));
    expect(new Set(Object.values(TAG)).size).toBe(Object.keys(TAG).length);
  });

  it('has the same sandbox operation codes and hardening letters', () => {
    expect(SANDBOX_OP).toEqual(asTable(xList('TSNS_SANDBOX_OPS')));
    expect(new Set(Object.values(SANDBOX_OP)).size).toBe(Object.keys(SANDBOX_OP).length);
    expect(HARDENING).toEqual(asTable(xList('TSNS_HARDENING')));
    expect(EXTRA).toEqual(asTable(xList('TSNS_EXTRAS')));
    expect([OP_SEP, OP_TRY, FD_SOURCE]).toEqual([define('TSNS_OP_SEP'), define('TSNS_OP_TRY'), define('TSNS_FD_SOURCE')].map(cLiteral));
    expect([LISTENER_SEP, PID_MARK, SECCOMP_EARLY]).toEqual([define('TSNS_LISTENER_SEP'), define('TSNS_PID_MARK'), define('TSNS_SECCOMP_EARLY')].map(cLiteral));
  });

  it('has the same stages, numbered alike, and the same indexed ones', () => {
    expect(STAGES.map(([name, n, text]) => [name, String(n), `"${text}"`])).toEqual(xList('TSNS_STAGES'));
    expect([...INDEXED_STAGES]).toEqual(xList('TSNS_INDEXED_STAGES').map(([name]) => name));
  });

  it('has the same encodings of failures, wait statuses, pipes and namespace queries', () => {
    expect([STAGE_SHIFT, INDEX_SHIFT, WAIT_SHIFT, WAIT_EXITED, WAIT_SIGNALED, PIPE_SHIFT].map(String)).toEqual(
      ['TSNS_STAGE_SHIFT', 'TSNS_INDEX_SHIFT', 'TSNS_WAIT_SHIFT', 'TSNS_WAIT_EXITED', 'TSNS_WAIT_SIGNALED', 'TSNS_PIPE_SHIFT'].map(define),
    );
    expect(NS_QUERY).toEqual(Object.fromEntries(xList('TSNS_NS_QUERIES').map(([name, n]) => [name, Number(n)])));
  });

  it('decodes what the shim returns', () => {
    expect(decodeFailure(-(4 << 16 | 1))).toEqual({ stage: 'clone', code: 1, index: 0 });
    // An indexed stage: the index in the errno's high byte.
    expect(decodeFailure(-(29 << 16 | 3 << 8 | 2))).toEqual({ stage: 'sandbox', code: 2, index: 3 });
    expect(decodeFailure(-(999 << 16 | 5))).toMatchObject({ stage: 'native', code: 5 });
    expect(decodeWaitStatus(7, 1 << 16 | 3)).toEqual({ pid: 7, exitCode: 3, signal: null });
    expect(decodeWaitStatus(7, 2 << 16 | 15)).toEqual({ pid: 7, exitCode: null, signal: 'SIGTERM' });
    expect(decodePipe(5 << 16 | 6)).toEqual([5, 6]);
  });
});
