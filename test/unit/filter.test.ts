import { describe, expect, it } from 'vitest';
import { evaluate, parseFilter, type FilterRow } from '../../src/filter';

/** A row of lsns-like cells: NS, PID, NPROCS, PNS numbers; the rest text; null for an empty cell. */
function row(cells: Record<string, string | null>): FilterRow {
  return {
    type: (h) => (['NS', 'PID', 'NPROCS', 'PNS'].includes(h) ? 'u64' : 'string'),
    cell: (h) => cells[h] ?? null,
  };
}

const UTS = row({ NS: '4026531838', TYPE: 'uts', PID: '770', NPROCS: '3', COMMAND: 'sleep 20', USER: 'root', NSFS: null, PNS: null });
const NET = row({ NS: '4026532000', TYPE: 'net', PID: '12', NPROCS: '1', COMMAND: 'ip netns', USER: 'nobody', NSFS: '/run/netns/x', PNS: null });
const holds = (expr: string, r: FilterRow = UTS) => evaluate(parseFilter(expr).root, r);

function parseError(expr: string): string {
  try {
    parseFilter(expr);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`parsed: ${expr}`);
}

describe('lsns -Q expressions (scols-filter)', () => {
  it('compares holders, any case, with numbers and strings', () => {
    expect(holds('TYPE == "uts"')).toBe(true);
    expect(holds("type eq 'uts'")).toBe(true);
    expect(holds('PID == 770 && NPROCS > 1')).toBe(true);
    expect(holds('PID != 770')).toBe(false);
    expect(holds('NS >= 4026531838 and NS lt 4026531839')).toBe(true);
  });

  it('casts as libsmartcols does: the literal picks the type, a float wins over a number', () => {
    expect(holds('PID == "770"')).toBe(true); // the holder becomes text
    expect(holds('NS == "abc"')).toBe(false);
    expect(holds('PID > 769.5')).toBe(true);
    expect(holds('PID == 770.0')).toBe(true);
    expect(holds('NPROCS >= 2K')).toBe(false);
    expect(holds('(TYPE == "uts") == true')).toBe(true);
    expect(() => holds('TYPE == 5')).toThrow(/failed to apply filter: 'uts' is not a number/);
  });

  it('and and or are one level, left to right (as the grammar has it, not the man page)', () => {
    // (net or uts) and PID == 12: false for the uts row.
    expect(holds('TYPE == "net" or TYPE == "uts" and PID == 12')).toBe(false);
    expect(holds('TYPE == "net" or (TYPE == "uts" and PID == 12)')).toBe(false);
    expect(holds('TYPE == "uts" or TYPE == "net" and PID == 770')).toBe(true);
    expect(holds('!(TYPE == "uts") and PID == 770')).toBe(false);
    expect(holds('not not (TYPE == "uts")')).toBe(true);
  });

  it('regular expressions are extended POSIX ones, character classes too', () => {
    expect(holds('COMMAND =~ "^sleep [[:digit:]]+$"')).toBe(true);
    expect(holds('TYPE !~ "^(mnt|uts)$"')).toBe(false);
    expect(holds('PID =~ "^77"')).toBe(true);
  });

  it('empty cells: a bare holder is false, no number equals one, text compares as less than ""', () => {
    expect(holds('NSFS')).toBe(false);
    expect(holds('NSFS', NET)).toBe(true);
    expect(holds('PNS == 0')).toBe(false);
    expect(holds('PNS != 0')).toBe(false);
    expect(holds('PNS == ""')).toBe(false); // an empty number reads "0" as text
    expect(holds('NSFS != ""')).toBe(true);
    expect(holds('NSFS == NSFS')).toBe(true);
  });

  it('says what is wrong as bison does', () => {
    expect(parseError('NS ==')).toBe('failed to parse "NS ==": syntax error, unexpected end of file');
    expect(parseError('NS == 1 2')).toBe('failed to parse "NS == 1 2": syntax error, unexpected NUMBER, expecting end of file');
    expect(parseError('(NS == 1 2)')).toBe('failed to parse "(NS == 1 2)": syntax error, unexpected NUMBER');
    expect(parseError('NS == 1 )')).toBe('failed to parse "NS == 1 )": syntax error, unexpected \')\', expecting end of file');
    expect(parseError('== 1')).toBe('failed to parse "== 1": syntax error, unexpected EQ');
    expect(parseError("TYPE == 'uts")).toBe('failed to parse "TYPE == \'uts": syntax error, unexpected invalid token');
    expect(parseError('NS == 5X')).toBe('failed to parse "NS == 5X": syntax error, unexpected HOLDER, expecting end of file');
    expect(parseError('NS =~ "("')).toBe('failed to parse "NS =~ "("": Unmatched ( or \\(');
    // libsmartcols echoes a stray character to stdout and goes on; tsns refuses it.
    expect(parseError('NS = 1')).toBe('failed to parse "NS = 1": syntax error, unexpected character \'=\'');
  });

  it('lists the holders it names, as written, once each', () => {
    expect(parseFilter('type == "x" or TYPE == "y" and pid > 1').holders).toEqual(['type', 'TYPE', 'pid']);
  });
});
