/**
 * The few calls of the Kubernetes CRI (runtime.v1.RuntimeService) that a
 * kubelet makes to run a pod, spoken to containerd's socket over gRPC
 * (HTTP/2 from node:http2, protobuf written out by hand): enough to run a
 * pod with a RuntimeClass handler as the kubelet does, with no kubelet and
 * no crictl on the machine. Field numbers are those of the CRI's api.proto.
 */
import http2 from 'node:http2';
import net from 'node:net';

// ---------------------------------------------------------------- protobuf
type Field = [number, 'string' | 'bytes', string | Buffer] | [number, 'varint', number] | [number, 'message', Buffer];

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return Buffer.from(out);
}

/** A message from its fields (repeated fields: the same number again). */
export function msg(...fields: (Field | null | undefined)[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    if (!f) continue;
    const [num, kind, value] = f;
    if (kind === 'varint') {
      parts.push(varint((num << 3) | 0), varint(value));
    } else {
      const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
      parts.push(varint((num << 3) | 2), varint(bytes.length), bytes);
    }
  }
  return Buffer.concat(parts);
}

const str = (num: number, s: string | undefined): Field | null => (s === undefined ? null : [num, 'string', s]);
const sub = (num: number, m: Buffer): Field => [num, 'message', m];
const int = (num: number, n: number | undefined): Field | null => (n === undefined ? null : [num, 'varint', n]);
const strs = (num: number, xs: readonly string[] = []): Field[] => xs.map((s) => [num, 'string', s]);
const map = (num: number, m: Record<string, string> = {}): Field[] => Object.entries(m).map(([k, v]) => sub(num, msg(str(1, k), str(2, v))));

/** A decoded message: field number → its values (varints as numbers, the rest as bytes). */
export type Decoded = Map<number, (number | Buffer)[]>;

export function decode(buf: Buffer): Decoded {
  const out: Decoded = new Map();
  let i = 0;
  const readVarint = () => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7n;
    }
    return v;
  };
  while (i < buf.length) {
    const key = Number(readVarint());
    const num = key >> 3;
    const wire = key & 7;
    let value: number | Buffer;
    if (wire === 0) value = Number(BigInt.asIntN(64, readVarint()));
    else if (wire === 2) {
      const len = Number(readVarint());
      value = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1) {
      value = buf.subarray(i, i + 8);
      i += 8;
    } else if (wire === 5) {
      value = buf.subarray(i, i + 4);
      i += 4;
    } else throw new Error(`protobuf: wire type ${wire} at ${i}`);
    if (!out.has(num)) out.set(num, []);
    out.get(num)!.push(value);
  }
  return out;
}

const getStr = (d: Decoded, n: number) => (d.get(n)?.[0] as Buffer | undefined)?.toString('utf8') ?? '';
const getNum = (d: Decoded, n: number) => (d.get(n)?.[0] as number | undefined) ?? 0;
const getMsg = (d: Decoded, n: number) => decode((d.get(n)?.[0] as Buffer | undefined) ?? Buffer.alloc(0));

// ---------------------------------------------------------------- gRPC over HTTP/2
export class GrpcError extends Error {
  constructor(public readonly method: string, public readonly status: number, message: string) {
    super(`${method}: grpc status ${status}: ${message}`);
  }
}

export class CriClient {
  private session: http2.ClientHttp2Session;

  constructor(socket: string) {
    this.session = http2.connect('http://localhost', { createConnection: () => net.connect(socket) });
    this.session.on('error', () => {
      /* each call reports its own failure */
    });
  }

  close(): void {
    this.session.close();
  }

  call(service: string, method: string, body: Buffer, timeoutMs = 60_000): Promise<Decoded> {
    const path = `/${service}/${method}`;
    return new Promise((resolve, reject) => {
      const req = this.session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
      const timer = setTimeout(() => req.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
      const chunks: Buffer[] = [];
      let status: number | null = null;
      let message = '';
      const take = (h: http2.IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) {
          status = Number(h['grpc-status']);
          message = decodeURIComponent(String(h['grpc-message'] ?? ''));
        }
      };
      req.on('response', take);
      req.on('trailers', take);
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.on('close', () => {
        clearTimeout(timer);
        if (status === null) return reject(new GrpcError(path, -1, 'the call ended without a status'));
        if (status !== 0) return reject(new GrpcError(path, status, message));
        const data = Buffer.concat(chunks);
        // One length-prefixed message: a compressed flag byte, a 4-byte length.
        resolve(decode(data.length >= 5 ? data.subarray(5, 5 + data.readUInt32BE(1)) : Buffer.alloc(0)));
      });
      const frame = Buffer.alloc(5);
      frame.writeUInt32BE(body.length, 1);
      req.end(Buffer.concat([frame, body]));
    });
  }

  private rt(method: string, body: Buffer, timeoutMs?: number) {
    return this.call('runtime.v1.RuntimeService', method, body, timeoutMs);
  }

  async version(): Promise<{ runtimeName: string; runtimeVersion: string; apiVersion: string }> {
    const d = await this.rt('Version', msg(str(1, 'v1')));
    return { runtimeName: getStr(d, 2), runtimeVersion: getStr(d, 3), apiVersion: getStr(d, 4) };
  }

  /** A pod on the host's network (so no CNI plugin is needed), selected by RuntimeClass `handler`. */
  async runPodSandbox(pod: PodSpec, handler: string): Promise<string> {
    const d = await this.rt('RunPodSandbox', msg(sub(1, podConfig(pod)), str(2, handler)));
    return getStr(d, 1);
  }

  async createContainer(podId: string, pod: PodSpec, c: ContainerSpec): Promise<string> {
    const config = msg(
      sub(1, msg(str(1, c.name), int(2, 0))),
      sub(2, msg(str(1, c.image))),
      ...strs(3, c.command),
      ...strs(4, c.args),
      str(5, c.workingDir),
      ...Object.entries(c.env ?? {}).map(([k, v]) => sub(6, msg(str(1, k), str(2, v)))),
      str(11, c.logPath),
      c.tty ? int(14, 1) : null,
    );
    const d = await this.rt('CreateContainer', msg(str(1, podId), sub(2, config), sub(3, podConfig(pod))));
    return getStr(d, 1);
  }

  async startContainer(id: string): Promise<void> {
    await this.rt('StartContainer', msg(str(1, id)));
  }

  /** state: 0 created, 1 running, 2 exited, 3 unknown. */
  async containerStatus(id: string): Promise<{ state: number; exitCode: number; reason: string; message: string }> {
    const s = getMsg(await this.rt('ContainerStatus', msg(str(1, id))), 1);
    return { state: getNum(s, 3), exitCode: getNum(s, 7), reason: getStr(s, 10), message: getStr(s, 11) };
  }

  async execSync(id: string, cmd: readonly string[], timeoutSeconds = 20): Promise<{ stdout: string; stderr: string; exitCode: number }> {
    const d = await this.rt('ExecSync', msg(str(1, id), ...strs(2, cmd), int(3, timeoutSeconds)), (timeoutSeconds + 10) * 1000);
    return { stdout: getStr(d, 1), stderr: getStr(d, 2), exitCode: getNum(d, 3) };
  }

  async stopContainer(id: string, timeoutSeconds: number): Promise<void> {
    await this.rt('StopContainer', msg(str(1, id), int(2, timeoutSeconds)), (timeoutSeconds + 30) * 1000);
  }

  async removeContainer(id: string): Promise<void> {
    await this.rt('RemoveContainer', msg(str(1, id)));
  }

  async stopPodSandbox(id: string): Promise<void> {
    await this.rt('StopPodSandbox', msg(str(1, id)));
  }

  async removePodSandbox(id: string): Promise<void> {
    await this.rt('RemovePodSandbox', msg(str(1, id)));
  }

  /** Pod sandbox ids, as `crictl pods -q` lists them. */
  async listPodSandboxes(): Promise<string[]> {
    const d = await this.rt('ListPodSandbox', msg());
    return (d.get(1) ?? []).map((b) => getStr(decode(b as Buffer), 1));
  }
}

export interface PodSpec {
  name: string;
  uid: string;
  namespace: string;
  logDirectory: string;
  hostname?: string;
}

export interface ContainerSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: Record<string, string>;
  /** Relative to the pod's log directory. */
  logPath?: string;
  tty?: boolean;
}

/** PodSandboxConfig: metadata, hostname, log directory, and Linux options with the host's network (NamespaceMode NODE = 2). */
function podConfig(pod: PodSpec): Buffer {
  const namespaceOptions = msg(int(1, 2));
  return msg(
    sub(1, msg(str(1, pod.name), str(2, pod.uid), str(3, pod.namespace), int(4, 0))),
    str(2, pod.hostname),
    str(3, pod.logDirectory),
    ...map(6, { app: pod.name }),
    sub(8, msg(sub(2, msg(sub(1, namespaceOptions))))),
  );
}
