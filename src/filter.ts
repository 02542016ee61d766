/**
 * lsns -Q/--filter: libsmartcols' filter expressions (scols-filter(5)), with
 * its tokens, its precedence (`and` and `or` are one level, left to right,
 * as its grammar has them, whatever the man page says), its casts between
 * strings, numbers, floats and booleans, and its rules for empty cells.
 * Generic over columns: a holder is a column name, any case.
 */
import { TsnsError } from './errors';

export type FilterType = 'string' | 'u64' | 'float' | 'bool';

type Op = 'AND' | 'OR' | 'EQ' | 'NE' | 'LT' | 'LE' | 'GT' | 'GE' | 'REG' | 'NREG';

interface Literal { kind: 'literal'; type: FilterType; value: string | bigint | number | boolean }
interface Holder { kind: 'holder'; name: string }
interface Neg { kind: 'neg'; operand: FilterNode }
interface Binary { kind: 'binary'; op: Op; left: FilterNode; right: FilterNode; regex?: RegExp }
export type FilterNode = Literal | Holder | Neg | Binary;

/** A parsed filter: its tree, and the holders it names (as written, each once, in order; any case). */
export interface Filter {
  root: FilterNode;
  holders: string[];
}

/** What a row gives the filter: a holder's type, and its cell (null when empty). */
export interface FilterRow {
  type(holder: string): FilterType;
  cell(holder: string): string | null;
}

export class FilterError extends TsnsError {}

type Token =
  | { t: 'NUMBER'; v: bigint } | { t: 'FLOAT'; v: number } | { t: 'STRING'; v: string } | { t: 'HOLDER'; v: string }
  | { t: Op | 'NEG' | 'TRUE' | 'FALSE' | '(' | ')' | 'invalid token' | 'end of file' };

const WORDS: Record<string, Token['t']> = {
  and: 'AND', AND: 'AND', or: 'OR', OR: 'OR', not: 'NEG', NOT: 'NEG', eq: 'EQ', EQ: 'EQ', ne: 'NE', NE: 'NE',
  le: 'LE', LE: 'LE', lt: 'LT', LT: 'LT', ge: 'GE', GE: 'GE', gt: 'GT', GT: 'GT', false: 'FALSE', FALSE: 'FALSE', true: 'TRUE', TRUE: 'TRUE',
};
const SYMBOLS: [string, Token['t']][] = [
  ['&&', 'AND'], ['||', 'OR'], ['==', 'EQ'], ['!=', 'NE'], ['<=', 'LE'], ['>=', 'GE'], ['=~', 'REG'], ['!~', 'NREG'],
  ['<', 'LT'], ['>', 'GT'], ['!', 'NEG'], ['(', '('], [')', ')'],
];
const U64_MAX = (1n << 64n) - 1n;
const SUFFIX = 'KMGTPEZY';

/** How bison names a token in "unexpected X". */
function shown(t: Token): string {
  return t.t === '(' || t.t === ')' ? `'${t.t}'` : t.t;
}

function tokenize(expr: string, fail: (why: string) => never): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < expr.length) {
    const rest = expr.slice(i);
    const blank = /^[ \t\n]+/.exec(rest);
    if (blank) { i += blank[0].length; continue; }
    const float = /^[0-9]+\.[0-9]+/.exec(rest);
    const int = /^([0-9]+)([KMGTPEZY](?:iB)?)?/.exec(rest);
    const id = /^[a-zA-Z][a-zA-Z_.%:/\-0-9]*/.exec(rest);
    const str = /^("[^"\n]*"|'[^'\n]*')/.exec(rest);
    if (float) {
      out.push({ t: 'FLOAT', v: Number(float[0]) });
      i += float[0].length;
    } else if (int) {
      let v = BigInt(int[1]!);
      if (int[2]) {
        v *= 1024n ** BigInt(SUFFIX.indexOf(int[2][0]!) + 1);
        if (v > U64_MAX) fail(`"${int[0]}" number too large`);
      } else if (v > U64_MAX) {
        v = U64_MAX; // strtoumax saturates
      }
      out.push({ t: 'NUMBER', v });
      i += int[0].length;
    } else if (id) {
      out.push(WORDS[id[0]] ? ({ t: WORDS[id[0]] } as Token) : { t: 'HOLDER', v: id[0] });
      i += id[0].length;
    } else if (str) {
      out.push({ t: 'STRING', v: str[0].slice(1, -1).trim() });
      i += str[0].length;
    } else {
      const sym = SYMBOLS.find(([s]) => rest.startsWith(s));
      if (sym) {
        out.push({ t: sym[1] } as Token);
        i += sym[0].length;
      } else if (rest[0] === "'") {
        out.push({ t: 'invalid token' });
        i++;
      } else {
        // libsmartcols' scanner echoes such a character to stdout and goes on; a clear error instead.
        fail(`syntax error, unexpected character '${rest[0]}'`);
      }
    }
  }
  out.push({ t: 'end of file' });
  return out;
}

const COMPARE: readonly string[] = ['EQ', 'NE', 'LT', 'LE', 'GT', 'GE', 'REG', 'NREG'];

/** Parse EXPR as lsns -Q does; errors read as libsmartcols' (bison's) do. */
export function parseFilter(expr: string): Filter {
  const fail = (why: string): never => {
    throw new FilterError(`failed to parse "${expr}": ${why}`, { stage: 'option', hint: 'see scols-filter(5): e.g. -Q \'TYPE == "net" and NPROCS > 1\'' });
  };
  const tokens = tokenize(expr, fail);
  const holders: string[] = [];
  let at = 0;
  let depth = 0;
  const unexpected = (complete: boolean): never => {
    // After a whole expression at the top only the end may follow; bison lists
    // what it expected only when that is a few tokens.
    const t = tokens[at]!;
    return fail(`syntax error, unexpected ${shown(t)}${complete && depth === 0 ? ', expecting end of file' : ''}`);
  };
  const unary = (): FilterNode => {
    const t = tokens[at]!;
    switch (t.t) {
      case 'NEG': at++; return { kind: 'neg', operand: unary() };
      case '(': {
        at++;
        depth++;
        const inner = binary(0);
        if (tokens[at]!.t !== ')') unexpected(true);
        at++;
        depth--;
        return inner;
      }
      case 'NUMBER': at++; return { kind: 'literal', type: 'u64', value: t.v };
      case 'FLOAT': at++; return { kind: 'literal', type: 'float', value: t.v };
      case 'STRING': at++; return { kind: 'literal', type: 'string', value: t.v };
      case 'TRUE': case 'FALSE': at++; return { kind: 'literal', type: 'bool', value: t.t === 'TRUE' };
      case 'HOLDER': {
        at++;
        if (!holders.includes(t.v)) holders.push(t.v);
        return { kind: 'holder', name: t.v.toUpperCase() };
      }
      default: return unexpected(false);
    }
  };
  // Two levels, both left-associative: and/or, then the comparisons.
  const binary = (min: number): FilterNode => {
    let left = unary();
    for (;;) {
      const t = tokens[at]!.t;
      const level = t === 'AND' || t === 'OR' ? 0 : COMPARE.includes(t) ? 1 : -1;
      if (level < min || level < 0) return left;
      at++;
      const right = binary(level + 1);
      const node: Binary = { kind: 'binary', op: t as Op, left, right };
      if (t === 'REG' || t === 'NREG') node.regex = compileRegex(right, fail);
      left = node;
    }
  };
  const root = binary(0);
  if (tokens[at]!.t !== 'end of file') unexpected(true);
  return { root, holders };
}

/** POSIX extended regular expressions (regcomp REG_EXTENDED) as JavaScript has them. */
function compileRegex(node: FilterNode, fail: (why: string) => never): RegExp {
  if (node.kind !== 'literal' || node.type !== 'string') return fail('the right side of =~ and !~ must be a "string"');
  const classes: Record<string, string> = {
    alpha: 'a-zA-Z', digit: '0-9', alnum: 'a-zA-Z0-9', upper: 'A-Z', lower: 'a-z', space: ' \\t\\n\\r\\f\\v',
    blank: ' \\t', punct: '!-\\/:-@\\[-`{-~', xdigit: '0-9A-Fa-f', cntrl: '\\x00-\\x1f\\x7f', print: '\\x20-\\x7e', graph: '\\x21-\\x7e',
  };
  const source = (node.value as string).replace(/\[:([a-z]+):\]/g, (m, c: string) => classes[c] ?? m);
  try {
    return new RegExp(source);
  } catch {
    const unmatched = /\((?![^)]*\))/.test(source) ? 'Unmatched ( or \\(' : /\[(?![^\]]*\])/.test(source) ? 'Unmatched [, [^, [:, [., or [=' : 'Invalid regular expression';
    return fail(unmatched);
  }
}

/** A value as libsmartcols holds it; `empty`: a cell with no data, which no number equals. */
interface Value {
  type: FilterType;
  str: string | null;
  num: bigint;
  fnum: number;
  bool: boolean;
  empty: boolean;
}

function applyError(what: string): FilterError {
  return new FilterError(`failed to apply filter: ${what}`, { stage: 'option', hint: 'compare numbers with numbers and text with "strings"' });
}

function strtou64(s: string): bigint {
  if (!/^\s*\+?[0-9]+$/.test(s)) throw applyError(`'${s}' is not a number: Invalid argument (EINVAL)`);
  const v = BigInt(s.trim());
  if (v > U64_MAX) throw applyError(`'${s}': Numerical result out of range (ERANGE)`);
  return v;
}

function value(type: FilterType, v: Partial<Value>): Value {
  return { type, str: null, num: 0n, fnum: 0, bool: false, empty: false, ...v };
}

/** %Lg */
function formatFloat(n: number): string {
  if (n === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(n)));
  if (exp < -4 || exp >= 6) {
    const [m, e] = n.toExponential(5).split('e');
    return `${m!.replace(/\.?0+$/, '')}e${e![0] === '-' ? '-' : '+'}${e!.replace(/^[-+]/, '').padStart(2, '0')}`;
  }
  return String(Number(n.toPrecision(6)));
}

function cast(v: Value, to: FilterType): Value {
  if (v.type === to) return v;
  const out = value(to, { empty: v.empty });
  if (v.type === 'string') {
    const s = v.str;
    if (to === 'u64') out.num = s === null ? 0n : strtou64(s);
    else if (to === 'float') {
      if (s !== null && !/^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(s)) throw applyError(`'${s}' is not a number: Invalid argument (EINVAL)`);
      out.fnum = s === null ? 0 : Number(s);
    } else out.bool = s !== null && s !== '' && (s === '1' || s.toLowerCase() === 'true' || /^[yY]/.test(s));
    return out;
  }
  const asNumber = v.type === 'u64' ? Number(v.num) : v.type === 'float' ? v.fnum : v.bool ? 1 : 0;
  if (to === 'string') out.str = v.type === 'u64' ? String(v.num) : v.type === 'float' ? formatFloat(v.fnum) : String(v.bool);
  else if (to === 'u64') out.num = v.type === 'u64' ? v.num : BigInt(Math.trunc(asNumber));
  else if (to === 'float') out.fnum = v.type === 'u64' ? Number(v.num) : asNumber;
  else out.bool = asNumber > 0;
  return out;
}

function nodeType(n: FilterNode, row: FilterRow): FilterType {
  if (n.kind === 'literal') return n.type;
  if (n.kind === 'holder') return row.type(n.name);
  return 'bool';
}

/** The type a comparison is made in: a literal's over a holder's, a float over a number. */
function comparisonType(n: Binary, row: FilterRow): FilterType {
  const l = nodeType(n.left, row);
  const r = nodeType(n.right, row);
  if (l === r) return l;
  const lh = n.left.kind === 'holder';
  const rh = n.right.kind === 'holder';
  const type = lh && !rh ? r : l;
  return type === 'u64' && (l === 'float' || r === 'float') ? 'float' : type;
}

function fetch(n: FilterNode, row: FilterRow): Value {
  switch (n.kind) {
    case 'literal':
      if (n.type === 'string') return value('string', { str: n.value as string });
      if (n.type === 'u64') return value('u64', { num: n.value as bigint });
      if (n.type === 'float') return value('float', { fnum: n.value as number });
      return value('bool', { bool: n.value as boolean });
    case 'holder': {
      const cell = row.cell(n.name);
      const raw = value('string', { str: cell, empty: cell === null });
      return cast(raw, row.type(n.name));
    }
    default:
      return value('bool', { bool: evaluate(n, row) });
  }
}

/** A holder's value in another type: as libsmartcols copies it, only an empty string stays empty. */
function operand(n: FilterNode, type: FilterType, row: FilterRow): Value {
  const v = fetch(n, row);
  if (v.type === type) return v;
  return cast({ ...v, empty: v.type === 'string' && v.str === null }, type);
}

function byteCompare(a: string | null, b: string | null): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function compare(n: Binary, row: FilterRow): boolean {
  const type = comparisonType(n, row);
  const l = operand(n.left, type, row);
  const r = operand(n.right, type, row);
  if (n.op === 'REG' || n.op === 'NREG') {
    if (type !== 'string') throw applyError(`=~ and !~ compare text, not a ${type}: Invalid argument (EINVAL)`);
    const hit = n.regex!.test(l.str ?? '');
    return n.op === 'REG' ? hit : !hit;
  }
  let c: number;
  if (type === 'string') c = byteCompare(l.str, r.str);
  else if (l.empty || r.empty) return false;
  else if (type === 'u64') c = l.num < r.num ? -1 : l.num > r.num ? 1 : 0;
  else if (type === 'float') c = l.fnum < r.fnum ? -1 : l.fnum > r.fnum ? 1 : 0;
  else c = Number(l.bool) - Number(r.bool);
  switch (n.op) {
    case 'EQ': return c === 0;
    case 'NE': return c !== 0;
    case 'LT': return c < 0;
    case 'LE': return c <= 0;
    case 'GT': return c > 0;
    default: return c >= 0;
  }
}

/** Whether a row passes; throws FilterError where libsmartcols fails to apply the filter. */
export function evaluate(n: FilterNode, row: FilterRow): boolean {
  switch (n.kind) {
    case 'neg': return !evaluate(n.operand, row);
    case 'binary':
      if (n.op === 'AND') return evaluate(n.left, row) && evaluate(n.right, row);
      if (n.op === 'OR') return evaluate(n.left, row) || evaluate(n.right, row);
      return compare(n, row);
    default: {
      const v = fetch(n, row);
      if (v.empty) return false;
      return v.type === 'string' ? v.str !== null && v.str !== '' : v.type === 'u64' ? v.num !== 0n : v.type === 'float' ? v.fnum !== 0 : v.bool;
    }
  }
}
