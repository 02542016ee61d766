#!/usr/bin/env node
/**
 * Soak test for tsns's run() (issue 8, part 4): nothing leaks out of the
 * process that uses it.
 *
 * From one process: N sequential run()s that mix namespaces, user maps,
 * /proc mounts in pid namespaces, inits, time namespaces, piped stdio, exec
 * failures (rejections), signal deaths, timeouts and aborts; then LANES
 * concurrent lanes of PER_LANE runs each. Then it checks: no unexpected result,
 * the fd count and RSS back near the baseline, no new mount in our mount
 * namespace, no zombie child, no child process at all.
 *
 *   node --expose-gc test/soak/soak.mjs [--runs N] [--lanes L] [--per-lane P] [--quick]
 *                                       [--lib PATH] [--rss-cap MB] [--rss-steady MB] [--foreign-mounts-ok]
 *
 * RSS: a warmed-up process still grows for the first few thousand runs (V8's
 * old space, the allocator's arenas) and then levels off, so the checks are a
 * cap on the total growth (--rss-cap, default 64 MB) and, for 2000 runs or
 * more, the growth over the second half of the sequential runs (--rss-steady,
 * default 8 MB), which a real per-run leak would not pass.
 *
 * --quick is 500 sequential runs and 10 lanes x 20. Prints a human summary on
 * stderr and one JSON object on stdout; exits 1 when a check fails. Needs
 * root, or unprivileged user namespaces (then every run adds mapRootUser).
 */
import { createRequire } from 'node:module';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string' },
    lanes: { type: 'string' },
    'per-lane': { type: 'string' },
    quick: { type: 'boolean', default: false },
    lib: { type: 'string', default: resolve(here, '..', '..', 'dist', 'index.cjs') },
    'rss-cap': { type: 'string' },
    'rss-steady': { type: 'string' },
    'foreign-mounts-ok': { type: 'boolean', default: false },
  },
});
const num = (v, d) => (v === undefined ? d : Number(v));
const RUNS = num(flags.runs, flags.quick ? 500 : 10_000);
const LANES = num(flags.lanes, flags.quick ? 10 : 50);
const PER_LANE = num(flags['per-lane'], flags.quick ? 20 : 100);
const RSS_CAP = num(flags['rss-cap'], 64) * 1024 * 1024;
const RSS_STEADY = num(flags['rss-steady'], 8) * 1024 * 1024;

const tsns = createRequire(import.meta.url)(flags.lib);
const ROOT = process.geteuid() === 0;
/** Without root every namespace needs a user namespace. */
const base = ROOT ? {} : { mapRootUser: true };

// ---------------------------------------------------------------------------
// The mix. Each kind says how to run and what the one right outcome is.

const quiet = { stdio: ['ignore', 'ignore', 'inherit'] };
const piped = { stdio: ['ignore', 'pipe', 'pipe'] };

const KINDS = [
  { name: 'uts true', weight: 20, argv: ['true'], opts: { uts: true, ...quiet }, expect: { exitCode: 0 } },
  { name: 'ipc+uts exit 7', weight: 10, argv: ['sh', '-c', 'exit 7'], opts: { ipc: true, uts: true, ...quiet }, expect: { exitCode: 7 } },
  {
    name: 'mapRootUser uid_map', weight: 10, argv: ['cat', '/proc/self/uid_map'], opts: { mapRootUser: true, ...piped },
    check: (r) => r.exitCode === 0 && /^\s*0\s+\d+\s+1\s*$/.test(r.stdout),
  },
  {
    // exec keeps the pid: cat is PID 1 too, and /proc/self is it only in the new /proc.
    name: 'pid+mountProc is PID 1', weight: 10, argv: ['sh', '-c', 'echo $$; exec cat /proc/self/stat'],
    opts: { pid: true, mountProc: true, ...piped }, check: (r) => r.exitCode === 0 && r.stdout.startsWith('1\n1 (cat) '),
  },
  { name: 'exec failure ENOENT', weight: 8, argv: ['/nonexistent/tsns-soak'], opts: { uts: true, ...quiet }, reject: { stage: 'exec', errno: 'ENOENT' } },
  { name: 'exec failure EACCES', weight: 4, argv: ['/proc/version'], opts: { uts: true, ...quiet }, reject: { stage: 'exec', errno: 'EACCES' } },
  { name: 'signal death', weight: 8, argv: ['sh', '-c', 'kill -TERM $$'], opts: { uts: true, ...quiet }, expect: { exitCode: null, signal: 'SIGTERM' } },
  // (PID 1 cannot kill itself: the command under an init is PID 2.)
  { name: 'SIGKILL death under init', weight: 4, argv: ['sh', '-c', 'kill -KILL $$'], opts: { init: true, ...quiet }, expect: { exitCode: null, signal: 'SIGKILL' } },
  {
    name: 'stdin piped', weight: 6, argv: ['cat'], opts: { uts: true, input: 'soak', stdio: ['pipe', 'pipe', 'inherit'] },
    check: (r) => r.exitCode === 0 && r.stdout === 'soak',
  },
  { name: 'init', weight: 4, argv: ['sh', '-c', 'exit 3'], opts: { init: true, ...quiet }, expect: { exitCode: 3 } },
  { name: 'time namespace', weight: 3, argv: ['true'], opts: { monotonic: 100, ...quiet }, expect: { exitCode: 0 } },
  { name: 'net', weight: 2, argv: ['true'], opts: { net: true, ...quiet }, expect: { exitCode: 0 } },
  { name: 'all namespaces', weight: 2, argv: ['true'], opts: { all: true, mapRootUser: true, ...quiet }, expect: { exitCode: 0 } },
  {
    name: 'timeout', weight: 1, argv: ['sleep', '5'], opts: { uts: true, timeout: 30, ...quiet },
    check: (r) => r.timedOut === true && r.signal === 'SIGKILL',
  },
  {
    name: 'abort', weight: 1, argv: ['sleep', '5'], opts: { uts: true, ...quiet }, abortAfter: 30,
    check: (r) => r.aborted === true && r.signal === 'SIGKILL',
  },
];

const wheel = KINDS.flatMap((k) => Array(k.weight).fill(k));

/** A small deterministic PRNG, so a failing mix can be replayed. */
function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const failures = [];
const counts = new Map();

async function one(kind) {
  counts.set(kind.name, (counts.get(kind.name) ?? 0) + 1);
  let opts = { ...base, ...kind.opts };
  let controller;
  let timer;
  if (kind.abortAfter !== undefined) {
    controller = new AbortController();
    opts = { ...opts, signal: controller.signal };
    timer = setTimeout(() => controller.abort(), kind.abortAfter);
  }
  try {
    const r = await tsns.run(kind.argv, opts);
    let ok;
    if (kind.reject) ok = false;
    else if (kind.check) ok = kind.check(r);
    else ok = Object.entries(kind.expect).every(([k, v]) => r[k] === v);
    if (!ok) failures.push({ kind: kind.name, result: r });
  } catch (e) {
    const ok = kind.reject && e instanceof tsns.TsnsError && Object.entries(kind.reject).every(([k, v]) => e[k] === v);
    if (!ok) failures.push({ kind: kind.name, error: `${e?.name}: ${e?.message} (stage ${e?.stage}, errno ${e?.errno})` });
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------
// What the process holds.

function fdCount() {
  return readdirSync('/proc/self/fd').length;
}

function rss() {
  return process.memoryUsage().rss;
}

function settle() {
  if (global.gc) {
    global.gc();
    global.gc();
  }
}

function mountinfo() {
  return readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n');
}

/** New mountinfo lines; with --foreign-mounts-ok only those run() could have made (proc, or / and /proc changed). */
function mountDiff(before, after) {
  const old = new Set(before);
  const added = after.filter((l) => !old.has(l));
  if (!flags['foreign-mounts-ok']) return added;
  return added.filter((l) => {
    const f = l.split(' ');
    const point = f[4];
    const type = f[f.indexOf('-') + 1];
    return point === '/' || point === '/proc' || type === 'proc';
  });
}

function zombieChildren() {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (rest[0] === 'Z' && Number(rest[1]) === process.pid) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

function children() {
  const out = [];
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      out.push(...readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number));
    } catch {
      // thread gone
    }
  }
  return out;
}

function snapshot() {
  settle();
  return { fds: fdCount(), rss: rss(), heapUsed: process.memoryUsage().heapUsed };
}

const mb = (n) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const log = (s) => process.stderr.write(`${s}\n`);

// ---------------------------------------------------------------------------

async function main() {
  if (!global.gc) log('soak: run with node --expose-gc for steadier RSS numbers');
  // Warm up: every kind once (loads the native shim, JITs the paths), then settle.
  for (const k of KINDS) await one(k);
  await new Promise((r) => setTimeout(r, 100));
  const mountsBefore = mountinfo();
  const baseline = snapshot();
  log(`soak: baseline fds ${baseline.fds}, rss ${mb(baseline.rss)}; ${RUNS} sequential, then ${LANES} x ${PER_LANE} concurrent`);

  const rand = prng(0x75736e73);
  const t0 = performance.now();
  let pausedMs = 0;
  let midpoint = null;
  for (let i = 0; i < RUNS; i++) {
    await one(wheel[Math.floor(rand() * wheel.length)]);
    if (i + 1 === Math.floor(RUNS / 2) || (RUNS >= 2000 && (i + 1) % 2000 === 0)) {
      const p = performance.now();
      const s = snapshot();
      if (i + 1 === Math.floor(RUNS / 2)) midpoint = s;
      log(`soak: ${i + 1} runs, fds ${s.fds}, rss ${mb(s.rss)}, failures ${failures.length}`);
      pausedMs += performance.now() - p;
    }
  }
  const seqMs = performance.now() - t0 - pausedMs;
  await new Promise((r) => setTimeout(r, 100));
  const afterSeq = snapshot();

  const t1 = performance.now();
  let peakFds = 0;
  const sampler = setInterval(() => (peakFds = Math.max(peakFds, fdCount())), 20);
  await Promise.all(Array.from({ length: LANES }, async (_, lane) => {
    const r = prng(lane + 1);
    for (let i = 0; i < PER_LANE; i++) await one(wheel[Math.floor(r() * wheel.length)]);
  }));
  clearInterval(sampler);
  const concMs = performance.now() - t1;
  await new Promise((r) => setTimeout(r, 200));
  const after = snapshot();
  const mountsAfter = mountinfo();

  const report = {
    runs: { sequential: RUNS, concurrent: LANES * PER_LANE, lanes: LANES },
    runsPerSecond: {
      sequential: Math.round((RUNS / seqMs) * 1000),
      concurrent: Math.round(((LANES * PER_LANE) / concMs) * 1000),
    },
    seconds: { sequential: +(seqMs / 1000).toFixed(1), concurrent: +(concMs / 1000).toFixed(1) },
    fds: { baseline: baseline.fds, afterSequential: afterSeq.fds, peakConcurrent: peakFds, after: after.fds },
    rssMB: {
      baseline: +(baseline.rss / 1048576).toFixed(1),
      midSequential: midpoint ? +(midpoint.rss / 1048576).toFixed(1) : null,
      afterSequential: +(afterSeq.rss / 1048576).toFixed(1),
      after: +(after.rss / 1048576).toFixed(1),
    },
    heapUsedMB: { baseline: +(baseline.heapUsed / 1048576).toFixed(1), after: +(after.heapUsed / 1048576).toFixed(1) },
    newMounts: mountDiff(mountsBefore, mountsAfter),
    zombies: zombieChildren(),
    children: children(),
    failures: failures.slice(0, 20),
    failureCount: failures.length,
    mix: Object.fromEntries(counts),
  };
  const problems = [];
  if (failures.length) problems.push(`${failures.length} unexpected results`);
  if (afterSeq.fds !== baseline.fds) problems.push(`fds after the sequential runs ${afterSeq.fds} != baseline ${baseline.fds}`);
  if (after.fds !== baseline.fds) problems.push(`fds after the concurrent runs ${after.fds} != baseline ${baseline.fds}`);
  if (after.rss - baseline.rss > RSS_CAP) problems.push(`rss grew ${mb(after.rss - baseline.rss)} in all (cap ${mb(RSS_CAP)})`);
  if (RUNS >= 2000 && midpoint && afterSeq.rss - midpoint.rss > RSS_STEADY) {
    problems.push(`rss grew ${mb(afterSeq.rss - midpoint.rss)} over the second half of the sequential runs (allowed ${mb(RSS_STEADY)})`);
  }
  if (report.newMounts.length) problems.push(`${report.newMounts.length} new mounts`);
  if (report.zombies.length) problems.push(`zombie children ${report.zombies.join(' ')}`);
  if (report.children.length) problems.push(`children still there: ${report.children.join(' ')}`);
  report.ok = problems.length === 0;
  report.problems = problems;

  log(`soak: sequential ${RUNS} runs in ${report.seconds.sequential} s (${report.runsPerSecond.sequential}/s); ` +
    `concurrent ${LANES * PER_LANE} in ${report.seconds.concurrent} s (${report.runsPerSecond.concurrent}/s)`);
  log(`soak: fds ${baseline.fds} -> ${afterSeq.fds} -> ${after.fds} (peak ${peakFds} while concurrent); ` +
    `rss ${mb(baseline.rss)} -> ${midpoint ? `${mb(midpoint.rss)} (half) -> ` : ''}${mb(afterSeq.rss)} -> ${mb(after.rss)}`);
  log(`soak: ${report.ok ? 'OK' : `FAILED: ${problems.join('; ')}`}`);
  for (const f of failures.slice(0, 5)) log(`soak: failure ${JSON.stringify(f)}`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exitCode = report.ok ? 0 : 1;
}

main().catch((e) => {
  log(`soak: crashed: ${e?.stack ?? e}`);
  process.exitCode = 2;
});
