/** ps, pause/resume, update and events: a container through its cgroup (src/cgroup), as runc does them. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Cgroup } from '../cgroup/apply';
import { checkResources } from '../cgroup/limits';
import { cgroupProcs, freezeCgroup, oomKills, thawCgroup, updateCgroup } from '../cgroup/ops';
import { resourcesFromUpdate, type RuncUpdateFlags } from '../cgroup/resources';
import { cgroupStats, eventJson } from '../cgroup/stats';
import { TsnsError } from '../errors';
import { bool, containerId, parseFlags, str, usage } from './args';
import type { Globals } from './create';
import { warn } from './log';
import { status } from './lifecycle';
import type { OciStatus } from './main';
import { alive, readState, type ContainerState } from './state';

const OK: OciStatus = { code: 0, signal: null };

function cgroupOf(s: ContainerState, what: string): Cgroup {
  if (!s.cgroup) throw new TsnsError(`cannot ${what} container ${s.id}: it has no cgroup`, { stage: 'cgroup', hint: 'a rootless container on cgroup v1 runs without one' });
  return s.cgroup;
}

/** Every pid of the container: its cgroup's, or without one the process and its descendants. */
export function containerPids(s: ContainerState): number[] {
  if (s.cgroup) return cgroupProcs(s.cgroup);
  if (!alive(s)) return [];
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(s.pid);
  return out.sort((a, b) => a - b);
}

export async function ps(g: Globals, args: readonly string[]): Promise<OciStatus> {
  const { flags, operands } = parseFlags(args, [{ name: 'format', alias: 'f', kind: 'string' }], 'ps', { stopAfter: 1 });
  const id = containerId(operands, 'ps', Infinity);
  const s = readState(g.root, id);
  const pids = containerPids(s);
  const format = str(flags, 'format') ?? 'table';
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify(pids)}\n`);
    return OK;
  }
  if (format !== 'table') throw usage(`invalid format option "${format}"`, 'ps');
  // runc's way: ps(1) with the options given (default -ef), its lines kept for the container's pids.
  const out = execFileSync('ps', operands.length > 1 ? operands.slice(1) : ['-ef'], { encoding: 'utf8' }).split('\n');
  const col = out[0]!.trim().split(/\s+/).indexOf('PID');
  if (col < 0) throw new TsnsError("ps's output has no PID column", { stage: 'plan', hint: 'give ps options that print PID' });
  const keep = new Set(pids);
  process.stdout.write(`${[out[0], ...out.slice(1).filter((l) => keep.has(Number(l.trim().split(/\s+/)[col])))].join('\n')}\n`);
  return OK;
}

export async function pause(g: Globals, args: readonly string[], freeze: boolean): Promise<OciStatus> {
  const { operands } = parseFlags(args, [], freeze ? 'pause' : 'resume', { interspersed: true });
  const s = readState(g.root, containerId(operands, freeze ? 'pause' : 'resume'));
  const st = status(g, s);
  // runc pauses a created container too; resume brings it back to created.
  if (freeze && st !== 'running' && st !== 'created') throw new TsnsError(`container not running`, { stage: 'plan', hint: `it is ${st}` });
  if (!freeze && st !== 'paused') throw new TsnsError(`container not paused`, { stage: 'plan', hint: `it is ${st}` });
  if (freeze) freezeCgroup(cgroupOf(s, 'pause'));
  else thawCgroup(cgroupOf(s, 'resume'));
  return OK;
}

const UPDATE_FLAGS: [string, keyof RuncUpdateFlags][] = [
  ['memory', 'memory'], ['memory-swap', 'memorySwap'], ['memory-reservation', 'memoryReservation'], ['kernel-memory', 'kernelMemory'],
  ['kernel-memory-tcp', 'kernelMemoryTcp'], ['cpu-share', 'cpuShare'], ['cpu-period', 'cpuPeriod'], ['cpu-quota', 'cpuQuota'],
  ['cpu-rt-period', 'cpuRtPeriod'], ['cpu-rt-runtime', 'cpuRtRuntime'], ['cpuset-cpus', 'cpusetCpus'], ['cpuset-mems', 'cpusetMems'],
  ['blkio-weight', 'blkioWeight'], ['pids-limit', 'pidsLimit'],
];

export async function update(g: Globals, args: readonly string[]): Promise<OciStatus> {
  const defs = [...UPDATE_FLAGS.map(([name]) => ({ name, kind: 'string' as const })), { name: 'resources', alias: 'r', kind: 'string' as const },
    { name: 'l3-cache-schema', kind: 'string' as const }, { name: 'mem-bw-schema', kind: 'string' as const }];
  const { flags, operands } = parseFlags(args, defs, 'update', { interspersed: true });
  const s = readState(g.root, containerId(operands, 'update'));
  if (str(flags, 'l3-cache-schema') || str(flags, 'mem-bw-schema')) throw usage('Intel RDT is not supported by tsns-oci', 'update');
  const file = str(flags, 'resources');
  let r;
  if (file !== undefined) {
    const text = readFileSync(file === '-' ? 0 : file, 'utf8');
    const { parseJson } = await import('../seccomp/json');
    r = checkResources(parseJson(text), file === '-' ? 'resources (stdin)' : file);
  } else {
    const f: RuncUpdateFlags = {};
    for (const [name, key] of UPDATE_FLAGS) if (str(flags, name) !== undefined) f[key] = str(flags, name);
    r = resourcesFromUpdate(f);
  }
  if (status(g, s) === 'stopped') throw new TsnsError('container not running', { stage: 'plan' });
  const cg = cgroupOf(s, 'update');
  if (cg.unit) {
    // --systemd-cgroup's: the unit's properties first, as runc sets them
    const { updateScope } = await import('./systemd');
    const { detectLayout } = await import('../cgroup/detect');
    for (const w of await updateScope(cg, r, detectLayout(), s.rootless)) warn(w);
  } else for (const w of updateCgroup(cg, r)) warn(w);
  return OK;
}

/** A Go duration, as runc's flag takes it: "5s", "500ms", "1m30s", "0". */
function parseInterval(text: string): number {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/g)];
  if (text !== '0' && (parts.length === 0 || parts.map((p) => p[0]).join('') !== text)) {
    throw usage(`invalid value "${text}" for flag -interval: parse error`, 'events');
  }
  return parts.reduce((ms, p) => ms + Number(p[1]) * unit[p[2]!]!, 0);
}

export async function events(g: Globals, args: readonly string[]): Promise<OciStatus> {
  const { flags, operands } = parseFlags(args, [{ name: 'stats', kind: 'bool' }, { name: 'interval', kind: 'string' }], 'events', { interspersed: true });
  const s = readState(g.root, containerId(operands, 'events'));
  const cg = cgroupOf(s, 'read the events of');
  if (bool(flags, 'stats')) {
    process.stdout.write(`${eventJson('stats', s.id, cgroupStats(cg))}\n`);
    return OK;
  }
  const every = parseInterval(str(flags, 'interval') ?? '5s');
  let ooms = oomKills(cg);
  // As runc's ticker: the first stats come one interval in, not at once.
  const step = Math.max(1, Math.min(100, every));
  while (alive(s)) {
    for (let t = 0; t < every && alive(s); t += step) {
      await new Promise((r) => setTimeout(r, step));
      const now = oomKills(cg);
      if (now > ooms) process.stdout.write(`${eventJson('oom', s.id)}\n`);
      ooms = now;
    }
    if (alive(s)) process.stdout.write(`${eventJson('stats', s.id, cgroupStats(cg))}\n`);
  }
  return OK;
}
