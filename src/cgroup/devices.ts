/**
 * Pure: device rules (`linux.resources.devices`) as the kernel takes them —
 * lines for cgroup v1's devices.allow and devices.deny, or, on cgroup v2,
 * an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE.
 *
 * Semantics, on both: the rules in order, each later one overriding the
 * earlier ones where they overlap, and what no rule allows is denied — the
 * v1 controller's own rules, which is what runc and crun reproduce on v2.
 */
import { planError } from '../plan/identity';
import type { DeviceRule } from './resources';

/** What runc allows every container on top of its config's rules (specconv.AllowedDevices). */
export const DEFAULT_DEVICES: readonly DeviceRule[] = [
  { allow: true, type: 'c', major: -1, minor: -1, access: 'm' },
  { allow: true, type: 'b', major: -1, minor: -1, access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 136, minor: -1, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' },
];

export function checkDeviceRule(rule: DeviceRule, index: number): void {
  const where = `linux.resources.devices[${index}]`;
  if (typeof rule.allow !== 'boolean') throw planError(`${where}: "allow" must be true or false`);
  if (rule.type !== undefined && !['a', 'b', 'c'].includes(rule.type)) throw planError(`${where}: type '${rule.type}' is not a, b or c`);
  if (rule.access !== undefined && !/^[rwm]*$/.test(rule.access)) throw planError(`${where}: access '${rule.access}' is not made of r, w and m`);
  for (const k of ['major', 'minor'] as const) {
    const v = rule[k];
    if (v !== undefined && (!Number.isInteger(v) || v < -1 || v > 0xffffffff)) throw planError(`${where}: ${k} ${v} is not a device number (or -1: any)`);
  }
}

const any = (n: number | undefined) => n === undefined || n === -1;

/** A rule that matches every device with every access. */
function matchesAll(r: DeviceRule): boolean {
  const access = r.access ?? 'rwm';
  return (r.type ?? 'a') === 'a' && ['r', 'w', 'm'].every((a) => access.includes(a)) && any(r.major) && any(r.minor);
}

/** One rule as devices.allow/devices.deny take it: `c 1:3 rwm`, or `a` for all. */
export function v1DeviceLine(r: DeviceRule): string {
  const type = r.type ?? 'a';
  if (type === 'a') return 'a';
  const num = (n: number | undefined) => (any(n) ? '*' : String(n));
  return `${type} ${num(r.major)}:${num(r.minor)} ${r.access || 'rwm'}`;
}

/** The v1 writes for a rule list, in order. */
export function v1DeviceWrites(rules: readonly DeviceRule[]): { file: string; value: string }[] {
  return rules.map((r) => ({ file: r.allow ? 'devices.allow' : 'devices.deny', value: v1DeviceLine(r) }));
}

// eBPF encodings (linux/bpf.h): instruction classes, operations, registers.
const LDX_MEM_W = 0x61;
const ALU32_AND_K = 0x54;
const ALU32_RSH_K = 0x74;
const MOV64_K = 0xb7;
const MOV64_X = 0xbf;
const JEQ_K = 0x15;
const JNE_K = 0x55;
const EXIT = 0x95;
const DEV_TYPE: Record<string, number> = { b: 1, c: 2 };
const ACCESS: Record<string, number> = { m: 1, r: 2, w: 4 };

type Insn = [code: number, dst: number, src: number, off: number, imm: number];

function accessMask(access: string | undefined): number {
  return [...(access || 'rwm')].reduce((m, a) => m | (ACCESS[a] ?? 0), 0);
}

/**
 * One rule's block: jump past it unless the request matches, then answer.
 * R2 = device type, R3 = requested access, R4 = major, R5 = minor. An
 * allow rule matches when it grants every requested access; a deny rule
 * when it names any of them.
 */
function ruleBlock(r: DeviceRule): Insn[] {
  const checks: Insn[][] = [];
  const type = r.type ?? 'a';
  if (type !== 'a') checks.push([[JNE_K, 2, 0, 0, DEV_TYPE[type]!]]);
  const mask = accessMask(r.access);
  if (mask !== 7) {
    checks.push(r.allow
      ? [[MOV64_X, 1, 3, 0, 0], [ALU32_AND_K, 1, 0, 0, ~mask & 7], [JNE_K, 1, 0, 0, 0]]
      : [[MOV64_X, 1, 3, 0, 0], [ALU32_AND_K, 1, 0, 0, mask], [JEQ_K, 1, 0, 0, 0]]);
  }
  if (!any(r.major)) checks.push([[JNE_K, 4, 0, 0, r.major!]]);
  if (!any(r.minor)) checks.push([[JNE_K, 5, 0, 0, r.minor!]]);
  const answer: Insn[] = [[MOV64_K, 0, 0, 0, r.allow ? 1 : 0], [EXIT, 0, 0, 0, 0]];
  const body = [...checks.flat(), ...answer];
  // Each conditional jump goes to the end of the block (offsets count from the next instruction).
  return body.map((insn, i) => (insn[0] === JNE_K || insn[0] === JEQ_K ? [insn[0], insn[1], insn[2], body.length - i - 1, insn[4]] : insn));
}

/**
 * The cgroup v2 device program for a rule list: the rules from the last to
 * the first, the first that matches decides; a rule that matches everything
 * ends the search; nothing matched: denied.
 */
export function deviceProgram(rules: readonly DeviceRule[]): Buffer {
  const insns: Insn[] = [
    [LDX_MEM_W, 2, 1, 0, 0], [ALU32_AND_K, 2, 0, 0, 0xffff],
    [LDX_MEM_W, 3, 1, 0, 0], [ALU32_RSH_K, 3, 0, 0, 16],
    [LDX_MEM_W, 4, 1, 4, 0], [LDX_MEM_W, 5, 1, 8, 0],
  ];
  let ended = false;
  for (const r of [...rules].reverse()) {
    insns.push(...ruleBlock(r));
    if (matchesAll(r)) {
      ended = true;
      break;
    }
  }
  if (!ended) insns.push([MOV64_K, 0, 0, 0, 0], [EXIT, 0, 0, 0, 0]);
  const out = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, dst, src, off, imm], i) => {
    out.writeUInt8(code, i * 8);
    out.writeUInt8((src << 4) | dst, i * 8 + 1);
    out.writeInt16LE(off, i * 8 + 2);
    out.writeInt32LE(imm | 0, i * 8 + 4);
  });
  return out;
}

/** What a program built by deviceProgram() answers, for tests: run it on a request. */
export function runDeviceProgram(program: Buffer, type: 'b' | 'c', access: string, major: number, minor: number): number {
  const reg = new Array<number>(11).fill(0);
  const ctx = [((accessMask(access) << 16) | DEV_TYPE[type]!) >>> 0, major >>> 0, minor >>> 0];
  for (let pc = 0; pc < program.length / 8; pc++) {
    const code = program.readUInt8(pc * 8);
    const dst = program.readUInt8(pc * 8 + 1) & 0xf;
    const src = program.readUInt8(pc * 8 + 1) >> 4;
    const off = program.readInt16LE(pc * 8 + 2);
    const imm = program.readInt32LE(pc * 8 + 4);
    switch (code) {
      case LDX_MEM_W: reg[dst] = ctx[off / 4]!; break;
      case ALU32_AND_K: reg[dst] = (reg[dst]! & imm) >>> 0; break;
      case ALU32_RSH_K: reg[dst] = reg[dst]! >>> imm; break;
      case MOV64_K: reg[dst] = imm; break;
      case MOV64_X: reg[dst] = reg[src]!; break;
      case JNE_K: if (reg[dst] !== imm >>> 0) pc += off; break;
      case JEQ_K: if (reg[dst] === imm >>> 0) pc += off; break;
      case EXIT: return reg[0]!;
      default: throw new Error(`unknown instruction ${code.toString(16)}`);
    }
  }
  throw new Error('the program ran off its end');
}
