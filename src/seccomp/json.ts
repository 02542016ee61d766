/**
 * JSON as JSON.parse reads it, except that an integer too large for a
 * double comes back as a bigint: seccomp argument values are 64-bit
 * (0xffffffffffffffff is 18446744073709551615), and JSON.parse would round
 * them to another value silently.
 */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [key: string]: JsonValue };

export class JsonError extends Error {}

const WS = new Set([0x20, 0x0a, 0x0d, 0x09]);
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const NUMBER = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
// eslint-disable-next-line no-control-regex
const PLAIN = /[^"\\\u0000-\u001f]*/y;

class Reader {
  at = 0;
  constructor(readonly text: string) {}

  fail(what: string): never {
    const before = this.text.slice(0, this.at);
    const line = before.split('\n').length;
    const column = this.at - before.lastIndexOf('\n');
    throw new JsonError(`${what} at line ${line} column ${column}`);
  }

  space(): void {
    while (this.at < this.text.length && WS.has(this.text.charCodeAt(this.at))) this.at++;
  }

  expect(c: string): void {
    this.space();
    if (this.text[this.at] !== c) this.fail(this.at >= this.text.length ? `expected '${c}', found the end` : `expected '${c}'`);
    this.at++;
  }

  value(depth: number): JsonValue {
    if (depth > 512) this.fail('nested too deeply');
    this.space();
    const c = this.text[this.at];
    if (c === '{') return this.object(depth);
    if (c === '[') return this.array(depth);
    if (c === '"') return this.string();
    for (const [word, v] of [['true', true], ['false', false], ['null', null]] as const) {
      if (this.text.startsWith(word, this.at)) {
        this.at += word.length;
        return v;
      }
    }
    return this.number();
  }

  number(): number | bigint {
    NUMBER.lastIndex = this.at;
    const m = NUMBER.exec(this.text);
    if (!m) this.fail(this.at >= this.text.length ? 'unexpected end' : `unexpected '${this.text[this.at]}'`);
    this.at += m[0].length;
    const n = Number(m[0]);
    if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(n)) return BigInt(m[0]);
    return n;
  }

  string(): string {
    this.at++;
    let out = '';
    for (;;) {
      PLAIN.lastIndex = this.at;
      const plain = PLAIN.exec(this.text)![0];
      out += plain;
      this.at += plain.length;
      if (this.at >= this.text.length) this.fail('unterminated string');
      const c = this.text[this.at++]!;
      if (c === '"') return out;
      if (c !== '\\') this.fail('control character in a string');
      const e = this.text[this.at++];
      if (e === 'u') {
        const hex = this.text.slice(this.at, this.at + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('bad \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        this.at += 4;
      } else if (e !== undefined && ESCAPES[e] !== undefined) {
        out += ESCAPES[e];
      } else {
        this.fail('bad escape');
      }
    }
  }

  array(depth: number): JsonValue[] {
    this.at++;
    const out: JsonValue[] = [];
    this.space();
    if (this.text[this.at] === ']') {
      this.at++;
      return out;
    }
    for (;;) {
      out.push(this.value(depth + 1));
      this.space();
      if (this.text[this.at] === ']') {
        this.at++;
        return out;
      }
      this.expect(',');
    }
  }

  object(depth: number): { [key: string]: JsonValue } {
    this.at++;
    const out: { [key: string]: JsonValue } = {};
    this.space();
    if (this.text[this.at] === '}') {
      this.at++;
      return out;
    }
    for (;;) {
      this.space();
      if (this.text[this.at] !== '"') this.fail('expected a property name');
      const key = this.string();
      this.expect(':');
      // defineProperty: a key "__proto__" is data, as with JSON.parse.
      Object.defineProperty(out, key, { value: this.value(depth + 1), enumerable: true, writable: true, configurable: true });
      this.space();
      if (this.text[this.at] === '}') {
        this.at++;
        return out;
      }
      this.expect(',');
    }
  }
}

/** Parse JSON text; integers beyond 2^53 become bigints. Throws JsonError naming the line and column. */
export function parseJson(text: string): JsonValue {
  // JSON.parse reads the same where no number could be beyond 2^53 (15 digits or fewer), and is
  // several times faster; a config.json is parsed on every create. Malformed text is left to the
  // reader below, for its line and column.
  if (!/\d{16}/.test(text)) {
    try {
      return JSON.parse(text) as JsonValue;
    } catch {
      // the reader says where
    }
  }
  const r = new Reader(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  const v = r.value(0);
  r.space();
  if (r.at < r.text.length) r.fail('unexpected text after the end');
  return v;
}
