/**
 * A small D-Bus client: what tsns-oci needs to talk to systemd's manager
 * (method calls, their replies and errors, and the JobRemoved signal), on a
 * message bus or on systemd's private socket.
 *
 * Written here rather than taken from npm: dbus-next, the pure-JS client,
 * always says Hello, which only a bus answers (systemd's private socket,
 * root's way when no system bus runs, is a direct connection), and brings
 * seven packages (an XML parser among them) for the five calls used here.
 * The wire format is the D-Bus specification's: little-endian messages,
 * values aligned to their size, header fields as a(yv), SASL EXTERNAL.
 */
import { createConnection, type Socket } from 'node:net';

/** A value with its D-Bus signature, for a variant (`v`). */
export interface Variant {
  sig: string;
  value: DbusValue;
}
export type DbusValue = string | number | bigint | boolean | Buffer | Variant | DbusValue[];

export const variant = (sig: string, value: DbusValue): Variant => ({ sig, value });

/** An error the peer replied with (its name, e.g. org.freedesktop.systemd1.UnitExists, and text). */
export class DbusError extends Error {
  constructor(readonly type: string, text: string) {
    super(text || type);
    this.name = 'DbusError';
  }
}

/** The complete types of a signature: "sa(sv)" → ["s", "a(sv)"]. */
export function splitSignature(sig: string): string[] {
  const out: string[] = [];
  let i = 0;
  const one = (): void => {
    const c = sig[i++];
    if (c === 'a') return one();
    if (c === '(' || c === '{') {
      const close = c === '(' ? ')' : '}';
      while (sig[i] !== close) {
        if (i >= sig.length) throw new Error(`bad D-Bus signature '${sig}'`);
        one();
      }
      i++;
      return;
    }
    if (c === undefined || !'ybnqiuxtdsogvh'.includes(c)) throw new Error(`bad D-Bus signature '${sig}'`);
  };
  while (i < sig.length) {
    const start = i;
    one();
    out.push(sig.slice(start, i));
  }
  return out;
}

const ALIGN: Record<string, number> = { y: 1, b: 4, n: 2, q: 2, i: 4, u: 4, x: 8, t: 8, d: 8, s: 4, o: 4, g: 1, v: 1, h: 4, a: 4, '(': 8, '{': 8 };

class Writer {
  private buf = Buffer.alloc(256);
  len = 0;
  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }
  pad(to: number): void {
    const n = (to - (this.len % to)) % to;
    this.room(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
  }
  bytes(b: Buffer): void {
    this.room(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
  }
  u32(n: number): void {
    this.pad(4);
    this.room(4);
    this.buf.writeUInt32LE(n >>> 0, this.len);
    this.len += 4;
  }
  setU32(at: number, n: number): void {
    this.buf.writeUInt32LE(n, at);
  }
  value(sig: string, v: DbusValue): void {
    const c = sig[0]!;
    this.pad(ALIGN[c]!);
    this.room(8);
    switch (c) {
      case 'y': this.buf.writeUInt8(Number(v), this.len++); return;
      case 'b': this.buf.writeUInt32LE(v ? 1 : 0, this.len); this.len += 4; return;
      case 'n': this.buf.writeInt16LE(Number(v), this.len); this.len += 2; return;
      case 'q': this.buf.writeUInt16LE(Number(v), this.len); this.len += 2; return;
      case 'i': case 'h': this.buf.writeInt32LE(Number(v), this.len); this.len += 4; return;
      case 'u': this.buf.writeUInt32LE(Number(v), this.len); this.len += 4; return;
      case 'x': this.buf.writeBigInt64LE(BigInt(v as number | bigint), this.len); this.len += 8; return;
      case 't': this.buf.writeBigUInt64LE(BigInt(v as number | bigint), this.len); this.len += 8; return;
      case 'd': this.buf.writeDoubleLE(Number(v), this.len); this.len += 8; return;
      case 's': case 'o': case 'g': {
        const b = Buffer.from(String(v));
        if (c === 'g') this.value('y', b.length);
        else this.u32(b.length);
        this.bytes(Buffer.concat([b, Buffer.alloc(1)]));
        return;
      }
      case 'v': {
        const x = v as Variant;
        this.value('g', x.sig);
        this.value(x.sig, x.value);
        return;
      }
      case 'a': {
        const elem = sig.slice(1);
        const at = this.len;
        this.u32(0);
        this.pad(ALIGN[elem[0]!]!);
        const start = this.len;
        if (elem === 'y' && Buffer.isBuffer(v)) this.bytes(v);
        else for (const e of v as DbusValue[]) this.value(elem, e);
        this.setU32(at, this.len - start);
        return;
      }
      case '(': case '{': {
        const fields = splitSignature(sig.slice(1, -1));
        fields.forEach((f, i) => this.value(f, (v as DbusValue[])[i]!));
        return;
      }
      default: throw new Error(`cannot write D-Bus type '${sig}'`);
    }
  }
  done(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}

class Reader {
  constructor(private buf: Buffer, public at = 0) {}
  pad(to: number): void {
    this.at += (to - (this.at % to)) % to;
  }
  value(sig: string): DbusValue {
    const c = sig[0]!;
    this.pad(ALIGN[c]!);
    const b = this.buf;
    if (this.at > b.length) throw new Error('short D-Bus message');
    switch (c) {
      case 'y': return b.readUInt8(this.at++);
      case 'b': this.at += 4; return b.readUInt32LE(this.at - 4) !== 0;
      case 'n': this.at += 2; return b.readInt16LE(this.at - 2);
      case 'q': this.at += 2; return b.readUInt16LE(this.at - 2);
      case 'i': case 'h': this.at += 4; return b.readInt32LE(this.at - 4);
      case 'u': this.at += 4; return b.readUInt32LE(this.at - 4);
      case 'x': this.at += 8; return b.readBigInt64LE(this.at - 8);
      case 't': this.at += 8; return b.readBigUInt64LE(this.at - 8);
      case 'd': this.at += 8; return b.readDoubleLE(this.at - 8);
      case 's': case 'o': case 'g': {
        const n = c === 'g' ? b.readUInt8(this.at++) : (this.at += 4, b.readUInt32LE(this.at - 4));
        const s = b.toString('utf8', this.at, this.at + n);
        this.at += n + 1;
        return s;
      }
      case 'v': {
        const s = this.value('g') as string;
        return { sig: s, value: this.value(s) };
      }
      case 'a': {
        const n = (this.value('u') as number);
        const elem = sig.slice(1);
        this.pad(ALIGN[elem[0]!]!);
        const end = this.at + n;
        if (elem === 'y') {
          this.at = end;
          return Buffer.from(b.subarray(end - n, end));
        }
        const out: DbusValue[] = [];
        while (this.at < end) out.push(this.value(elem));
        return out;
      }
      case '(': case '{': return splitSignature(sig.slice(1, -1)).map((f) => this.value(f));
      default: throw new Error(`cannot read D-Bus type '${sig}'`);
    }
  }
}

export interface Message {
  type: number;
  serial: number;
  replySerial?: number;
  path?: string;
  iface?: string;
  member?: string;
  errorName?: string;
  sender?: string;
  sig: string;
  body: DbusValue[];
}

const CALL = 1, RETURN = 2, ERROR = 3, SIGNAL = 4;

export function encode(m: { serial: number; path: string; iface: string; member: string; destination?: string; sig: string; body: DbusValue[] }): Buffer {
  const body = new Writer();
  splitSignature(m.sig).forEach((s, i) => body.value(s, m.body[i]!));
  const fields: DbusValue[] = [[1, variant('o', m.path)], [2, variant('s', m.iface)], [3, variant('s', m.member)]];
  if (m.destination) fields.push([6, variant('s', m.destination)]);
  if (m.sig) fields.push([8, variant('g', m.sig)]);
  const head = new Writer();
  head.bytes(Buffer.from([0x6c, CALL, 0, 1]));
  head.u32(body.len);
  head.u32(m.serial);
  head.value('a(yv)', fields);
  head.pad(8);
  return Buffer.concat([head.done(), body.done()]);
}

/** One whole message at the start of buf, or null while more is to come; the length taken. */
export function decode(buf: Buffer): { message: Message; length: number } | null {
  if (buf.length < 16) return null;
  if (buf[0] !== 0x6c) throw new Error('a big-endian D-Bus message (not supported)');
  const bodyLen = buf.readUInt32LE(4);
  const fieldsLen = buf.readUInt32LE(12);
  const headLen = 16 + fieldsLen + ((8 - ((16 + fieldsLen) % 8)) % 8);
  if (buf.length < headLen + bodyLen) return null;
  const fields = new Reader(buf, 12).value('a(yv)') as [number, Variant][];
  const get = (code: number) => fields.find((f) => f[0] === code)?.[1].value;
  const sig = (get(8) as string | undefined) ?? '';
  const r = new Reader(buf.subarray(headLen, headLen + bodyLen));
  const message: Message = {
    type: buf[1]!, serial: buf.readUInt32LE(8), replySerial: get(5) as number | undefined, path: get(1) as string | undefined,
    iface: get(2) as string | undefined, member: get(3) as string | undefined, errorName: get(4) as string | undefined,
    sender: get(7) as string | undefined, sig, body: splitSignature(sig).map((s) => r.value(s)),
  };
  return { message, length: headLen + bodyLen };
}

/** The socket paths of a D-Bus address ("unix:path=/run/dbus/system_bus_socket;unix:abstract=x"). */
export function addressPaths(address: string): string[] {
  const out: string[] = [];
  for (const part of address.split(';')) {
    const m = /^unix:(.*)$/.exec(part.trim());
    if (!m) continue;
    const kv = Object.fromEntries(m[1]!.split(',').map((p) => {
      const eq = p.indexOf('=');
      return [p.slice(0, eq), decodeURIComponent(p.slice(eq + 1))];
    }));
    if (kv.path) out.push(kv.path);
    else if (kv.abstract) out.push(`\0${kv.abstract}`);
  }
  return out;
}

export class DbusConnection {
  private serial = 0;
  private input = Buffer.alloc(0);
  private pending = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  private closed: Error | null = null;
  /** every signal received, for those waiting on one */
  readonly signals: Message[] = [];
  private waiters: (() => void)[] = [];

  private constructor(private sock: Socket) {
    sock.on('data', (d: Buffer) => this.take(d));
    const end = (e?: Error) => {
      this.closed ??= e ?? new Error('the D-Bus connection was closed');
      for (const p of this.pending.values()) p.reject(this.closed);
      this.pending.clear();
      for (const w of this.waiters.splice(0)) w();
    };
    sock.on('error', end);
    sock.on('close', () => end());
  }

  /** Connect to a socket and authenticate as our uid (SASL EXTERNAL); `bus`: say Hello, as a message bus wants. */
  static async open(path: string, bus: boolean, timeoutMs = 5000): Promise<DbusConnection> {
    const sock = createConnection({ path });
    sock.setTimeout(timeoutMs, () => sock.destroy(Object.assign(new Error(`no answer from ${path} in ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    const uid = Buffer.from(String(process.geteuid?.() ?? 0)).toString('hex');
    // BEGIN at once, as sd-bus's own clients send it: sent after the OK, systemd's private
    // socket at times takes it and the first message in one read and answers neither.
    sock.write(`\0AUTH EXTERNAL ${uid}\r\nBEGIN\r\n`);
    const line = await new Promise<string>((resolve, reject) => {
      let text = '';
      const onData = (d: Buffer) => {
        text += d.toString('latin1');
        if (!text.includes('\r\n')) return;
        sock.off('data', onData);
        resolve(text.slice(0, text.indexOf('\r\n')));
      };
      sock.on('data', onData);
      sock.once('error', reject);
      sock.once('close', () => reject(new Error(`${path} closed the connection during authentication`)));
    });
    if (!line.startsWith('OK ')) {
      sock.destroy();
      throw Object.assign(new Error(`${path} refused to authenticate uid ${process.geteuid?.()} (${line.trim()})`), { code: 'EACCES' });
    }
    sock.setTimeout(0);
    const c = new DbusConnection(sock);
    if (bus) await c.call('org.freedesktop.DBus', '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'Hello', '', []);
    return c;
  }

  private take(d: Buffer): void {
    this.input = Buffer.concat([this.input, d]);
    for (;;) {
      let got;
      try {
        got = decode(this.input);
      } catch (e) {
        this.sock.destroy(e as Error);
        return;
      }
      if (!got) return;
      this.input = this.input.subarray(got.length);
      const m = got.message;
      if ((m.type === RETURN || m.type === ERROR) && m.replySerial !== undefined) {
        const p = this.pending.get(m.replySerial);
        this.pending.delete(m.replySerial);
        if (m.type === RETURN) p?.resolve(m);
        else p?.reject(new DbusError(m.errorName ?? 'org.freedesktop.DBus.Error.Failed', typeof m.body[0] === 'string' ? m.body[0] : ''));
      } else if (m.type === SIGNAL) {
        this.signals.push(m);
        for (const w of this.waiters.splice(0)) w();
      }
    }
  }

  /** A method call; its reply's body. */
  async call(destination: string | undefined, path: string, iface: string, member: string, sig: string, body: DbusValue[]): Promise<DbusValue[]> {
    if (this.closed) throw this.closed;
    const serial = ++this.serial;
    const reply = new Promise<Message>((resolve, reject) => this.pending.set(serial, { resolve, reject }));
    this.sock.write(encode({ serial, path, iface, member, destination, sig, body }));
    return (await reply).body;
  }

  /** The first signal (received so far or to come) that `match` takes; rejects after timeoutMs. */
  async signal(match: (m: Message) => boolean, timeoutMs: number): Promise<Message> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = this.signals.find(match);
      if (found) return found;
      if (this.closed) throw this.closed;
      const left = until - Date.now();
      if (left <= 0) throw Object.assign(new Error(`no answer in ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.sock.destroy();
  }
}
