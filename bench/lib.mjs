// Small helpers shared by the bench orchestrator (index.mjs) and its worker (worker.mjs).
import { accessSync, constants as fsConstants, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const nowNs = () => process.hrtime.bigint();
export const nsToMs = (ns) => Number(ns) / 1e6;

export function median(xs) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function quantile(xs, q) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export function stats(xs) {
  return {
    n: xs.length,
    median: median(xs),
    min: xs.length ? Math.min(...xs) : NaN,
    max: xs.length ? Math.max(...xs) : NaN,
    p90: quantile(xs, 0.9),
  };
}

/** Parse /proc/PID/stat: {pid, comm, state, ppid}, or null if the process is gone. */
export function readStat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may contain spaces and parentheses: it ends at the last ')'.
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const rest = text.slice(close + 2).split(' ');
  return { pid: Number(pid), comm: text.slice(open + 1, close), state: rest[0], ppid: Number(rest[1]) };
}

/** Every process on the machine, as readStat() sees it. */
export function allProcesses() {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(name);
    if (st) out.push(st);
  }
  return out;
}

export function childrenOf(ppid, procs = allProcesses()) {
  return procs.filter((p) => p.ppid === ppid);
}

/** All descendants of pid, deepest first. */
export function descendantsOf(pid) {
  const procs = allProcesses();
  const byParent = new Map();
  for (const p of procs) {
    if (!byParent.has(p.ppid)) byParent.set(p.ppid, []);
    byParent.get(p.ppid).push(p);
  }
  const out = [];
  const visit = (q) => {
    for (const c of byParent.get(q) ?? []) {
      visit(c.pid);
      out.push(c);
    }
  };
  visit(pid);
  return out;
}

/** VmRSS of a process in KiB, or null. */
export function vmRssKiB(pid = 'self') {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The first executable NAME on PATH, or null. */
export function which(name) {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return null;
}
