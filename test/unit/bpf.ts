/**
 * A classic BPF interpreter for seccomp programs, as the kernel runs them
 * (the instructions libseccomp and the ENOSYS stub use), so that unit tests
 * can ask a compiled program what it answers for a call without loading it.
 */
export interface SeccompData {
  nr: number;
  arch: number;
  args?: readonly bigint[];
}

export const AUDIT = { X86_64: 0xc000003e, X86: 0x40000003, AARCH64: 0xc00000b7 } as const;
export const RET = { KILL_THREAD: 0, ALLOW: 0x7fff0000, ENOSYS: 0x50026, EPERM: 0x50001, NOTIFY: 0x7fc00000 } as const;

function dataBytes(d: SeccompData): Buffer {
  const b = Buffer.alloc(64);
  b.writeInt32LE(d.nr, 0);
  b.writeUInt32LE(d.arch >>> 0, 4);
  (d.args ?? []).forEach((a, i) => b.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  return b;
}

/** The program's answer (SECCOMP_RET_*) for one call. */
export function runFilter(prog: Buffer, d: SeccompData): number {
  const data = dataBytes(d);
  const mem = new Uint32Array(16);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc * 8 < prog.length; pc++) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog[pc * 8 + 2]!;
    const jf = prog[pc * 8 + 3]!;
    const k = prog.readUInt32LE(pc * 8 + 4);
    const jump = (cond: boolean) => (pc += cond ? jt : jf);
    switch (code) {
      case 0x20: a = data.readUInt32LE(k); break; // ld [k]
      case 0x00: a = k; break; // ld #k
      case 0x01: x = k; break; // ldx #k
      case 0x60: a = mem[k]!; break; // ld M[k]
      case 0x61: x = mem[k]!; break;
      case 0x02: mem[k] = a; break; // st
      case 0x03: mem[k] = x; break;
      case 0x54: a = (a & k) >>> 0; break; // and #k
      case 0x44: a = (a | k) >>> 0; break;
      case 0x07: x = a; break; // tax
      case 0x87: a = x; break; // txa
      case 0x05: pc += k; break; // ja
      case 0x15: jump(a === k); break;
      case 0x25: jump(a > k); break;
      case 0x35: jump(a >= k); break;
      case 0x45: jump((a & k) !== 0); break;
      case 0x1d: jump(a === x); break;
      case 0x2d: jump(a > x); break;
      case 0x3d: jump(a >= x); break;
      case 0x06: return k;
      case 0x16: return a;
      default: throw new Error(`instruction ${pc}: opcode 0x${code.toString(16)} not interpreted`);
    }
  }
  throw new Error('the program ran off its end');
}
