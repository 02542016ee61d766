#!/usr/bin/env node
// tsns benchmark harness: `npm run bench [-- --quick] [-- --json]`.
//
// Measures, in one run on one machine:
//   1. CLI wall time against `node -e 0`, `unshare` and (if installed) `bwrap`
//   2. where the CLI's time goes (TSNS_TRACE=1 phases, and single-import costs)
//   3. API throughput (sequential and concurrent) against child_process, execa
//      and a C clone loop (the physical limit)
//   4. clone cost as the parent's heap grows (50 MB vs 1 GB)
//   5. resident memory of the supervising process while a command runs
//   6. scale: 1000 concurrent commands from one process
//   7. seccomp profiles: the start-up a profile adds (Docker's default, a tiny one)
//   8. what a cgroup with limits adds to a run, next to runc on the same config (bench/cgroup.mjs)
//   9. tsns-oci next to runc and crun: each call, a container's start, a whole run, podman run --rm,
//      and what stays resident after create (bench/oci.mjs)
//
// It is a benchmark, not a test: it reports what it measures and never fails on
// a threshold. Every process it starts is waited for (PID 1 on the bench machine
// does not reap orphans).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sectionCgroup } from './cgroup.mjs';
import { sectionOci } from './oci.mjs';
import { childrenOf, descendantsOf, median, nowNs, nsToMs, sleep, stats, vmRssKiB, which } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const BIN = path.join(ROOT, 'bin', 'tsns.js');
const WORKER = path.join(HERE, 'worker.mjs');
const CLONE_LOOP_C = path.join(HERE, 'clone-loop.c');
const NODE = process.execPath;

const argv = process.argv.slice(2);
for (const a of argv) {
  if (!['--quick', '--json', '--help', '-h'].includes(a)) {
    process.stderr.write(`bench: unknown argument ${a}\nusage: node bench/index.mjs [--quick] [--json]\n`);
    process.exit(2);
  }
}
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write('usage: node bench/index.mjs [--quick] [--json]\n  --quick  fewer runs and shorter loops (< 20 s)\n  --json   print the results as JSON on stdout\n');
  process.exit(0);
}
const QUICK = argv.includes('--quick');
const JSON_OUT = argv.includes('--json');
const IS_ROOT = process.geteuid() === 0;

const CFG = QUICK
  ? { warmup: 0, cliRuns: 10, traceRuns: 3, importRuns: 2, apiSeconds: 1.5, otherSeconds: 0.2, cSeconds: 0.5, latencyRuns: 60, latencyWarmup: 10, scaleCount: 200 }
  : { warmup: 1, cliRuns: 30, traceRuns: 10, importRuns: 15, apiSeconds: 5, otherSeconds: 2, cSeconds: 2, latencyRuns: 300, latencyWarmup: 20, scaleCount: 1000 };

// Namespace options: as root plain; otherwise inside a new user namespace.
const TSNS_R = IS_ROOT ? [] : ['-r'];
const UNSHARE_R = IS_ROOT ? [] : ['-r'];
const API_OPTS = IS_ROOT ? { uts: true } : { uts: true, mapRootUser: true };
const SCALE_OPTS = IS_ROOT ? { uts: true, ipc: true, pid: true } : { uts: true, ipc: true, pid: true, mapRootUser: true };

// Ctrl-C reaches every process in the group; the bench and its workers then
// stop after the current step and still wait for every child they started.
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (!interrupted) progress(`${sig}: stopping after the current step (waiting for every child first)`);
    interrupted = true;
  });
}

// Children see a clean environment: no tracing or debugging unless asked for.
const ENV = { ...process.env };
delete ENV.TSNS_TRACE;
delete ENV.TSNS_DEBUG;

const progress = (msg) => process.stderr.write(`bench: ${msg}\n`);
// Sections may be measured out of order (see main); their lines are buffered and
// printed in section order.
let outBuffer = null;
const out = (line = '') => {
  if (JSON_OUT) return;
  if (outBuffer) outBuffer.push(line);
  else process.stdout.write(`${line}\n`);
};

// ---------------------------------------------------------------- formatting
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const f0 = (x) => (Number.isFinite(x) ? Math.round(x).toString() : '-');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '-');

function table(headers, rows) {
  const cells = [headers, ...rows].map((r) => r.map((c) => String(c ?? '')));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const numeric = headers.map((_, i) => rows.every((r) => /^[-+]?[\d.,]+(x|%| ms| µs)?$|^-$/.test(String(r[i] ?? ''))));
  const fmt = (r) =>
    r.map((c, i) => (numeric[i] && i > 0 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  out(fmt(cells[0]));
  out(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells.slice(1)) out(fmt(r));
}

function heading(title) {
  out();
  out(`== ${title}`);
}

// ---------------------------------------------------------------- machine

function machine() {
  let model = 'unknown';
  try {
    model = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? model;
  } catch {
    /* keep unknown */
  }
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    model,
    kernel: os.release(),
    node: process.version,
    memTotalMiB: Math.round(os.totalmem() / 1048576),
    loadavg: os.loadavg(),
    root: IS_ROOT,
    quick: QUICK,
  };
}

// ---------------------------------------------------------------- process helpers
/** One timed spawnSync; returns {ms, status, signal, stderr}. */
function timeOnce(cmd, { env = ENV, captureStderr = false } = {}) {
  const t0 = nowNs();
  const r = spawnSync(cmd.file, cmd.args, {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', captureStderr ? 'pipe' : 'ignore'],
    encoding: captureStderr ? 'utf8' : undefined,
    maxBuffer: 16 * 1024 * 1024,
  });
  const ms = nsToMs(nowNs() - t0);
  return { ms, status: r.status, signal: r.signal, error: r.error, stderr: captureStderr ? r.stderr ?? '' : '' };
}

/**
 * `runs` timed rounds interleaved A B C A B C, after `warmup` untimed rounds.
 * The first round (warm-up or timed) captures stderr to report a failing command.
 */
function interleaved(cmds, runs, warmup = CFG.warmup) {
  const res = new Map(cmds.map((c) => [c.key, { times: [], failures: 0, check: null }]));
  for (let round = -warmup; round < runs && !interrupted; round++) {
    for (const c of cmds) {
      const e = res.get(c.key);
      const first = e.check === null;
      const r = timeOnce(c, { captureStderr: first });
      const ok = !r.error && r.status === 0;
      if (first) e.check = ok ? 'ok' : `${r.error?.message ?? `exit ${r.status ?? r.signal}`} ${r.stderr.trim().split('\n')[0] ?? ''}`.trim();
      if (round < 0) continue;
      e.times.push(r.ms);
      if (!ok) e.failures++;
    }
  }
  return res;
}

/**
 * Start the worker in `mode`. `done` resolves with its result once it has exited
 * (it is always waited for). With args.waitForGo the worker prepares, reports
 * `ready`, and measures only after go().
 */
function startWorker(mode, args, nodeFlags = []) {
  const child = spawn(NODE, [...nodeFlags, WORKER, mode, JSON.stringify(args)], {
    cwd: ROOT,
    env: ENV,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  let msg;
  let markReady;
  const ready = new Promise((resolve) => {
    markReady = resolve;
  });
  child.on('message', (m) => {
    if (m?.ready) markReady(true);
    else msg = m;
  });
  // Settle only when the process has exited AND the IPC channel is closed, so
  // that its last message has been read.
  const disconnected = new Promise((resolve) => child.once('disconnect', resolve));
  const done = new Promise((resolve, reject) => {
    child.on('error', (e) => {
      markReady(false);
      reject(e);
    });
    child.on('exit', async (code, signal) => {
      await disconnected;
      markReady(false);
      if (msg?.ok) resolve(msg.result);
      else reject(new Error(msg?.error ?? `worker ${mode} exited with ${code ?? signal}`));
    });
  });
  done.catch(() => {}); // reported where it is awaited
  const go = () => {
    try {
      child.send('go');
    } catch {
      /* it has exited: done rejects */
    }
  };
  const abort = async () => {
    // SIGTERM: the worker reaps its own children before it exits.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await done.catch(() => {});
  };
  return { ready, done, go, abort };
}

const runWorker = (mode, args, nodeFlags = []) => startWorker(mode, args, nodeFlags).done;

// ---------------------------------------------------------------- 1. CLI wall time
function cliCommands() {
  const cmds = [
    { key: 'tsns', label: `node bin/tsns.js run ${TSNS_R.join(' ')}${TSNS_R.length ? ' ' : ''}--uts true`, file: NODE, args: [BIN, 'run', ...TSNS_R, '--uts', 'true'] },
    { key: 'node', label: 'node -e 0', file: NODE, args: ['-e', '0'] },
    { key: 'unshare', label: `unshare ${UNSHARE_R.join(' ')}${UNSHARE_R.length ? ' ' : ''}--uts true`, file: 'unshare', args: [...UNSHARE_R, '--uts', 'true'] },
  ];
  const bwrap = which('bwrap');
  if (bwrap) {
    cmds.push({ key: 'bwrap', label: 'bwrap --unshare-uts --ro-bind / / true', file: bwrap, args: ['--unshare-uts', '--ro-bind', '/', '/', 'true'] });
  }
  return { cmds, bwrap };
}

function sectionCli() {
  const { cmds, bwrap } = cliCommands();
  progress(`1. CLI wall time: ${CFG.cliRuns} interleaved rounds of ${cmds.length} commands`);
  const res = interleaved(cmds, CFG.cliRuns);
  const nodeMed = median(res.get('node').times);
  const unshareMed = median(res.get('unshare').times);
  const rows = cmds.map((c) => {
    const e = res.get(c.key);
    const s = stats(e.times);
    return { key: c.key, command: c.label, ...s, vsNode: s.median / nodeMed, vsUnshare: s.median / unshareMed, failures: e.failures, check: e.check };
  });

  heading(`1. CLI wall time (ms, ${CFG.cliRuns} runs each, interleaved; spawnSync from Node, hrtime around the spawn)`);
  table(
    ['command', 'median', 'min', 'max', 'x node -e 0', 'x unshare', 'failed'],
    rows.map((r) => [r.command, f1(r.median), f1(r.min), f1(r.max), ratio(r.median, nodeMed), ratio(r.median, unshareMed), String(r.failures)]),
  );
  if (!bwrap) out('(bwrap not on PATH: its row is omitted)');
  for (const r of rows) if (r.check !== 'ok') out(`note: ${r.command}: first run failed: ${r.check}`);
  const t = rows.find((r) => r.key === 'tsns');
  out(`tsns over node -e 0: +${f1(t.median - nodeMed)} ms; node -e 0 over unshare: +${f1(nodeMed - unshareMed)} ms`);
  // Each round ran both back to back: the ratio within a round cancels the machine's drift between rounds.
  const nodeTimes = res.get('node').times;
  const pairedVsNode = median(res.get('tsns').times.map((ms, i) => ms / nodeTimes[i]));
  out(`tsns / node -e 0, median of the ${nodeTimes.length} per-round ratios: ${pairedVsNode.toFixed(2)}x (steadier than the ratio of medians on a busy machine)`);
  return { runs: CFG.cliRuns, bwrap: bwrap ?? null, rows, pairedVsNode };
}

// ---------------------------------------------------------------- 2. where the time goes
const TRACE_RE = /^tsns-trace:\s+(.+?)\s+(-?\d+(?:\.\d+)?)\s*(?:ms)?\s*$/;

function sectionTrace() {
  progress(`2. TSNS_TRACE phases (${CFG.traceRuns} runs) and import costs (${CFG.importRuns} interleaved rounds)`);
  const cmd = { file: NODE, args: [BIN, 'run', ...TSNS_R, '--uts', 'true'] };
  const phases = new Map(); // phase -> ms[] (in order of first appearance)
  const walls = [];
  let tracedRuns = 0;
  let failures = 0;
  for (let i = 0; i < CFG.traceRuns; i++) {
    const r = timeOnce(cmd, { env: { ...ENV, TSNS_TRACE: '1' }, captureStderr: true });
    walls.push(r.ms);
    if (r.error || r.status !== 0) failures++;
    let seen = false;
    for (const line of r.stderr.split('\n')) {
      const m = TRACE_RE.exec(line.trim());
      if (!m) continue;
      seen = true;
      if (!phases.has(m[1])) phases.set(m[1], []);
      phases.get(m[1]).push(Number(m[2]));
    }
    if (seen) tracedRuns++;
    else if (i === 0 && !r.error && r.status === 0) break; // this build does not trace: no need to repeat
  }
  const trace = {
    supported: tracedRuns > 0,
    runs: CFG.traceRuns,
    tracedRuns,
    failures,
    wallMedianMs: median(walls),
    wallRuns: walls.length,
    phases: [...phases].map(([phase, xs]) => ({ phase, medianMs: median(xs), minMs: Math.min(...xs), maxMs: Math.max(...xs), seen: xs.length })),
  };

  // Single-import costs, each in a fresh `node -e` process, minus `node -e 0`.
  const nativeDirs = existsSync(path.join(ROOT, 'node_modules', '@yuuang'))
    ? readdirSync(path.join(ROOT, 'node_modules', '@yuuang')).filter((d) => d.startsWith('ffi-rs-linux-'))
    : [];
  const preferred = nativeDirs.find((d) => d.includes(os.arch())) ?? nativeDirs[0];
  let nodeFile = null;
  if (preferred) {
    const dir = path.join(ROOT, 'node_modules', '@yuuang', preferred);
    const f = readdirSync(dir).find((n) => n.endsWith('.node'));
    if (f) nodeFile = path.join(dir, f);
  }
  const imports = [
    { key: 'base', label: 'node -e 0', code: '0' },
    { key: 'commander', label: "require('commander')", code: "require('commander')" },
    { key: 'ffi-rs', label: "require('ffi-rs')", code: "require('ffi-rs')" },
  ];
  if (nodeFile) {
    const rel = path.relative(ROOT, nodeFile);
    imports.push({ key: 'ffi-rs.node', label: `require('./${rel}')`, code: `require(${JSON.stringify(nodeFile)})` });
  }
  imports.push(
    { key: 'cli', label: "require('./dist/cli.cjs')", code: "require('./dist/cli.cjs')" },
    { key: 'chalk', label: "import('chalk')", code: "import('chalk')" },
  );
  const cmds = imports.map((i) => ({ ...i, file: NODE, args: ['-e', i.code] }));
  const res = interleaved(cmds, CFG.importRuns);
  const base = median(res.get('base').times);
  const baseMin = Math.min(...res.get('base').times);
  const importRows = cmds.map((c) => {
    const e = res.get(c.key);
    const med = median(e.times);
    const min = Math.min(...e.times);
    return { key: c.key, what: c.label, medianMs: med, minMs: min, costMs: c.key === 'base' ? 0 : med - base, costByMinMs: c.key === 'base' ? 0 : min - baseMin, failures: e.failures, check: e.check };
  });

  heading('2. Where the CLI\'s time goes');
  if (!trace.supported) {
    out('(TSNS_TRACE not supported by this build)');
    out(`  wall of \`TSNS_TRACE=1 node bin/tsns.js run ${TSNS_R.map((a) => `${a} `).join('')}--uts true\`: median ${f1(trace.wallMedianMs)} ms over ${trace.wallRuns} run${trace.wallRuns === 1 ? '' : 's'}`);
  } else {
    out(`TSNS_TRACE=1 phases (median of ${trace.tracedRuns} traced runs; wall median ${f1(trace.wallMedianMs)} ms):`);
    table(
      ['phase', 'median ms', 'min', 'max', 'runs'],
      trace.phases.map((p) => [p.phase, f2(p.medianMs), f2(p.minMs), f2(p.maxMs), String(p.seen)]),
    );
    const sum = trace.phases.filter((p) => p.phase !== 'total').reduce((a, p) => a + p.medianMs, 0);
    out(`sum of phase medians ${f1(sum)} ms; wall median ${f1(trace.wallMedianMs)} ms; not covered by phases ${f1(trace.wallMedianMs - sum)} ms`);
  }
  out();
  out(`Import cost in a fresh process: ${CFG.importRuns} interleaved \`node -e\` runs each, minus \`node -e 0\` (median ${f1(base)} ms, min ${f1(baseMin)} ms):`);
  const signed = (x) => `${x >= 0 ? '+' : ''}${f1(x)}`;
  table(
    ['import', 'median ms', 'min ms', 'cost ms (median)', 'cost ms (min)', 'failed'],
    importRows.map((r) => [r.what, f1(r.medianMs), f1(r.minMs), r.key === 'base' ? '-' : signed(r.costMs), r.key === 'base' ? '-' : signed(r.costByMinMs), String(r.failures)]),
  );
  for (const r of importRows) if (r.check !== 'ok') out(`note: ${r.what}: first run failed: ${r.check}`);
  return { trace, imports: { runs: CFG.importRuns, baseMedianMs: base, rows: importRows } };
}

// ---------------------------------------------------------------- 3. API throughput
/** Compile bench/clone-loop.c into a temporary directory: {exe, dir} or {unavailable}. */
function compileCloneLoop() {
  if (!which('cc')) return { unavailable: 'cc not on PATH' };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsns-bench-'));
  const exe = path.join(dir, 'clone-loop');
  const cc = spawnSync('cc', ['-O2', '-o', exe, CLONE_LOOP_C], { encoding: 'utf8' });
  if (cc.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return { unavailable: `cc failed: ${(cc.stderr || cc.error?.message || '').trim().split('\n')[0]}` };
  }
  return { exe, dir };
}

function runCloneLoop(exe, seconds, vm = false) {
  const r = spawnSync(exe, [String(seconds), ...(IS_ROOT ? [] : ['user']), ...(vm ? ['vm'] : [])], { encoding: 'utf8' });
  if (r.status !== 0) return { unavailable: `clone-loop failed: ${(r.stderr || r.error?.message || '').trim()}` };
  return JSON.parse(r.stdout.trim());
}

async function sectionThroughput() {
  progress(`3. API throughput (${CFG.apiSeconds} s sequential, ${CFG.otherSeconds} s per other row) and C clone loops (${CFG.cSeconds} s, half before and half after; ${CFG.cSeconds / 2} s with CLONE_VM)`);
  const bin = compileCloneLoop();
  let w;
  let c;
  let cvm;
  try {
    // The C loop runs half before and half after the worker, to see drift.
    const before = bin.unavailable ? bin : runCloneLoop(bin.exe, CFG.cSeconds / 2);
    cvm = bin.unavailable ? bin : runCloneLoop(bin.exe, CFG.cSeconds / 2, true);
    w = await runWorker('throughput', {
      seconds: CFG.apiSeconds,
      otherSeconds: CFG.otherSeconds,
      inflight: [2, 8, 32],
      opts: API_OPTS,
      unshareArgs: [...UNSHARE_R, '--uts', 'true'],
    });
    const after = bin.unavailable ? bin : runCloneLoop(bin.exe, CFG.cSeconds / 2);
    if (before.unavailable || after.unavailable) c = { unavailable: before.unavailable ?? after.unavailable };
    else {
      const runs = before.runs + after.runs;
      const seconds = before.seconds + after.seconds;
      c = { runs, seconds, runsPerSec: runs / seconds, failures: before.failures + after.failures, before: before.runsPerSec, after: after.runsPerSec };
    }
  } finally {
    if (bin.dir) rmSync(bin.dir, { recursive: true, force: true });
  }
  const limit = c.runsPerSec;
  const rows = [];
  const optText = JSON.stringify(API_OPTS).replace(/"/g, '').replace(/:/g, ': ').replace(/,/g, ', ');
  for (const r of w.api) rows.push({ method: `tsns run(['true'], ${optText})`, ...r });
  for (const r of w.childProcess) rows.push({ method: `child_process.spawn unshare ${UNSHARE_R.join(' ')}${UNSHARE_R.length ? ' ' : ''}--uts true`, ...r });
  if (Array.isArray(w.execa)) for (const r of w.execa) rows.push({ method: `execa unshare ${UNSHARE_R.join(' ')}${UNSHARE_R.length ? ' ' : ''}--uts true`, ...r });
  const userFlag = IS_ROOT ? '' : '|CLONE_NEWUSER';
  if (!c.unavailable) rows.push({ method: `C clone(CLONE_NEWUTS${userFlag})+execve+waitpid`, inflight: 1, ...c });
  if (!cvm.unavailable) rows.push({ method: `C clone(CLONE_VM|CLONE_VFORK|CLONE_NEWUTS${userFlag}) (no page-table copy)`, inflight: 1, ...cvm });

  heading('3. Throughput of starting `true` in a new UTS namespace and waiting for it (one process)');
  table(
    ['method', 'in flight', 'runs/s', 'runs', 'seconds', '% of C clone loop', 'failed'],
    rows.map((r) => [r.method, String(r.inflight), f0(r.runsPerSec), String(r.runs), f1(r.seconds), Number.isFinite(limit) ? `${f1((100 * r.runsPerSec) / limit)}%` : '-', String(r.failures)]),
  );
  if (!Array.isArray(w.execa)) out(`(execa not resolvable: ${w.execa?.unavailable ?? 'unknown'})`);
  if (c.unavailable) out(`(C clone loop unavailable: ${c.unavailable})`);
  else out(`C loop before the API rows ${f0(c.before)} runs/s, after ${f0(c.after)} runs/s (a large difference means the machine's load changed)`);
  out('(the C loops run one at a time: with several in flight, Node can use both cores)');
  for (const r of rows) if (r.firstError) out(`note: ${r.method} x${r.inflight}: ${r.firstError}`);
  return { rows, cloneLoop: c, cloneLoopVm: cvm, execa: Array.isArray(w.execa) ? 'ok' : w.execa };
}

// ---------------------------------------------------------------- 4. clone cost vs parent size
const HEAP_FLAGS = ['--expose-gc', '--max-old-space-size=4096'];

/**
 * Start both heap workers; they allocate (first touch of ~1 GB is slow on a VM)
 * and then wait. main() starts them while section 5 runs, which only reads VmRSS.
 */
function prepareHeapWorkers() {
  const args = (heapMb) => ({ heapMb, runs: CFG.latencyRuns, warmup: CFG.latencyWarmup, opts: API_OPTS, waitForGo: true });
  return { small: startWorker('latency', args(50), HEAP_FLAGS), large: startWorker('latency', args(1024), HEAP_FLAGS) };
}

async function sectionHeap(prepared) {
  progress(`4. clone cost as the parent grows: ${CFG.latencyRuns} runs with ~50 MB and ~1 GB of live heap`);
  const w = prepared ?? prepareHeapWorkers();
  let small;
  let large;
  try {
    // Both must have finished allocating before either measures.
    await Promise.all([w.small.ready, w.large.ready]);
    w.small.go();
    small = await w.small.done;
    w.large.go();
    large = await w.large.done;
  } finally {
    await Promise.all([w.small.abort(), w.large.abort()]);
  }
  heading(`4. run(['true']) latency as the parent grows (µs, ${CFG.latencyRuns} sequential runs after ${CFG.latencyWarmup} warm-up)`);
  table(
    ['parent', 'heapUsed MiB', 'RSS MiB', 'median µs', 'p90 µs', 'min µs', 'max µs', 'failed'],
    [small, large].map((r) => [
      `~${r.heapMb >= 1024 ? `${r.heapMb / 1024} GB` : `${r.heapMb} MB`} live${r.sharedArrayBufferMb ? ` (${r.arraysMb} MB JS arrays + ${r.sharedArrayBufferMb} MB SharedArrayBuffer)` : ' (JS arrays)'}`,
      f0(r.heapUsedMiB),
      f0(r.rssMiB),
      f0(r.latencyUs.median),
      f0(r.latencyUs.p90),
      f0(r.latencyUs.min),
      f0(r.latencyUs.max),
      String(r.failures),
    ]),
  );
  out(`ratio 1 GB / 50 MB (median): ${ratio(large.latencyUs.median, small.latencyUs.median)}`);
  return { small, large, ratio: large.latencyUs.median / small.latencyUs.median };
}

// ---------------------------------------------------------------- 5. resident cost
function startTree(label, file, args) {
  const child = spawn(file, args, { cwd: ROOT, env: ENV, stdio: 'ignore' });
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ error: error.message }));
  });
  return { label, child, exited };
}

/**
 * Kill the tree from the leaves up, so the supervisor reaps its own child and
 * exits by itself; then reap the supervisor. The supervisor itself is killed
 * only once it has exec'd into the command (plain `unshare`), or as a last
 * resort: killing a supervisor that still has a child would orphan the child.
 */
async function stopTree(t) {
  const pid = t.child.pid;
  if (pid === undefined) return t.exited;
  const lastResort = Date.now() + 10000;
  for (;;) {
    const desc = descendantsOf(pid);
    for (const d of desc) {
      try {
        process.kill(d.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (desc.length === 0 && (readComm(pid) === 'sleep' || Date.now() > lastResort)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    const done = await Promise.race([t.exited, sleep(100).then(() => null)]);
    if (done) return done;
  }
}

async function sectionResident() {
  progress('5. resident memory of the supervising process while `sleep 5` runs');
  // [label, file, args, the supervisor keeps a child (else it execs the command)]
  const specs = [
    [`node bin/tsns.js run ${TSNS_R.join(' ')}${TSNS_R.length ? ' ' : ''}--uts sleep 5`, NODE, [BIN, 'run', ...TSNS_R, '--uts', 'sleep', '5'], true],
    [`unshare ${UNSHARE_R.join(' ')}${UNSHARE_R.length ? ' ' : ''}--uts --fork sleep 5`, 'unshare', [...UNSHARE_R, '--uts', '--fork', 'sleep', '5'], true],
    [`unshare ${UNSHARE_R.join(' ')}${UNSHARE_R.length ? ' ' : ''}--uts sleep 5 (execs: this is sleep itself)`, 'unshare', [...UNSHARE_R, '--uts', 'sleep', '5'], false],
  ];
  const trees = [];
  const rows = [];
  let readyMs = null;
  try {
    const t0 = Date.now();
    for (const [label, file, args, keepsChild] of specs) trees.push({ ...startTree(label, file, args), keepsChild });
    // ~1 s, but not before every `sleep` is running (a loaded machine starts Node slowly).
    const ready = (t) => {
      const pid = t.child.pid;
      if (pid === undefined || t.child.exitCode !== null || t.child.signalCode !== null) return true;
      return t.keepsChild ? descendantsOf(pid).some((d) => d.comm === 'sleep') : readComm(pid) === 'sleep';
    };
    while (!trees.every(ready) && Date.now() - t0 < 4000 && !interrupted) await sleep(25);
    readyMs = Date.now() - t0;
    await sleep(Math.max(0, 1000 - readyMs));
    for (const t of trees) {
      if (interrupted) break;
      const pid = t.child.pid;
      const desc = pid === undefined ? [] : descendantsOf(pid);
      rows.push({
        command: t.label,
        pid,
        comm: pid === undefined ? null : readComm(pid),
        vmRssKiB: pid === undefined ? null : vmRssKiB(pid),
        descendants: desc.map((d) => ({ pid: d.pid, comm: d.comm, vmRssKiB: vmRssKiB(d.pid) })),
      });
    }
  } finally {
    for (const t of trees) {
      const r = await stopTree(t);
      const row = rows.find((x) => x.command === t.label);
      if (row) row.exit = r;
    }
  }
  heading(`5. Resident memory of the supervising process (the direct child), ${readyMs > 1000 ? `${f1(readyMs / 1000)} s (when every sleep was running)` : '1 s'} into \`sleep 5\``);
  table(
    ['command', 'process', 'VmRSS KiB', 'its children'],
    rows.map((r) => [r.command, r.comm ?? '-', r.vmRssKiB === null ? '-' : String(r.vmRssKiB), r.descendants.map((d) => `${d.comm} ${d.vmRssKiB ?? '?'} KiB`).join(', ') || '-']),
  );
  return { readyMs, rows };
}

function readComm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- 6. scale
/** The C floor of the scale section (clone-loop.c's scale mode): {count, startMs, failures} or {unavailable}. */
function runScaleFloor(exe, count) {
  const sleepPath = which('sleep');
  if (!sleepPath) return { unavailable: 'sleep not on PATH' };
  const r = spawnSync(exe, ['scale', String(count), sleepPath, ...(IS_ROOT ? [] : ['user'])], { encoding: 'utf8' });
  if (r.status !== 0) return { unavailable: `clone-loop scale failed: ${(r.stderr || r.error?.message || '').trim()}` };
  return JSON.parse(r.stdout.trim());
}

async function sectionScale() {
  progress(`6. scale: ${CFG.scaleCount} concurrent \`sleep 30\` from one process, and the same from C before and after`);
  const bin = compileCloneLoop();
  let r;
  let floor;
  try {
    const before = bin.unavailable ? bin : runScaleFloor(bin.exe, CFG.scaleCount);
    r = await runWorker('scale', { count: CFG.scaleCount, opts: SCALE_OPTS });
    const after = bin.unavailable ? bin : runScaleFloor(bin.exe, CFG.scaleCount);
    floor = before.unavailable || after.unavailable
      ? { unavailable: before.unavailable ?? after.unavailable }
      : { startMs: (before.startMs + after.startMs) / 2, before: before.startMs, after: after.startMs, failures: before.failures + after.failures };
  } finally {
    if (bin.dir) rmSync(bin.dir, { recursive: true, force: true });
  }
  r.floor = floor;
  const optText = Object.keys(SCALE_OPTS).join(', ');
  const userFlag = IS_ROOT ? '' : '|CLONE_NEWUSER';
  heading(`6. Scale: ${r.count} x run(['sleep', '30'], { ${optText} }) from one process, not awaited`);
  table(
    ['measure', 'value'],
    [
      ['time until the last run() call returned', `${f1(r.startMs)} ms`],
      ...(floor.unavailable
        ? [['C floor', `unavailable: ${floor.unavailable}`]]
        : [
          ['C floor: the same starts from a C loop (see below)', `${f1(floor.startMs)} ms (before ${f0(floor.before)}, after ${f0(floor.after)}; ${floor.failures} failed)`],
          ['tsns / C floor', `${(r.startMs / floor.startMs).toFixed(2)}x`],
        ]),
      ['per start (mean)', `${f0(r.perStartUs)} µs`],
      [`per start, median of the first ${Math.max(1, Math.floor(r.count / 10))} calls`, `${f0(r.firstTenthUs)} µs`],
      [`per start, median of the last ${Math.max(1, Math.floor(r.count / 10))} calls`, `${f0(r.lastTenthUs)} µs`],
      ['alive as `sleep` (from /proc/PID/stat)', `${r.alive} / ${r.count}`],
      ['supervisor VmRSS before', `${r.rssBeforeKiB} KiB`],
      [`supervisor VmRSS with ${r.count} running`, `${r.rssKiB} KiB`],
      ['SIGKILL all, until every run() settled', `${f1(r.reapMs)} ms`],
      ['results with signal SIGKILL', `${r.killed} / ${r.count}`],
      ['failures (rejected run())', String(r.failures)],
      ['zombies left (state Z, ppid = worker)', String(r.zombies)],
      ['children left', String(r.childrenLeft)],
    ],
  );
  if (!floor.unavailable) {
    out(`C floor: clone(CLONE_VM|CLONE_VFORK|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID${userFlag}) + execve of sleep by its full path,`);
    out('in the same environment (sleep\'s own start-up depends on it, e.g. the locale), measured before and after the tsns row');
  }
  if (r.firstFailure) out(`note: first failure: ${r.firstFailure}`);
  return r;
}

// ---------------------------------------------------------------- 7. seccomp profiles
/** The start-up a profile adds: compiling it with libseccomp on every run, and loading the compiler at all. */
function sectionSeccomp() {
  if (!existsSync(path.join(ROOT, 'build', 'libtsns-seccomp.so'))) {
    heading('7. Seccomp profiles: not measured (tsns was built without libseccomp)');
    return { unavailable: 'build/libtsns-seccomp.so missing' };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsns-bench-seccomp-'));
  const tiny = path.join(dir, 'mkdir.json');
  writeFileSync(tiny, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' }] }));
  const cmds = [
    { key: 'plain', label: 'tsns run true', file: NODE, args: [BIN, 'run', 'true'] },
    { key: 'tiny', label: 'tsns run --seccomp-profile=mkdir.json true', file: NODE, args: [BIN, 'run', `--seccomp-profile=${tiny}`, 'true'] },
    { key: 'default', label: 'tsns run --seccomp-profile=default true', file: NODE, args: [BIN, 'run', '--seccomp-profile=default', 'true'] },
  ];
  progress(`7. seccomp profiles: ${CFG.cliRuns} interleaved rounds of ${cmds.length} commands, ${CFG.traceRuns} traced`);
  try {
    const res = interleaved(cmds, CFG.cliRuns);
    const plan = new Map(cmds.map((c) => [c.key, []]));
    for (let i = 0; i < CFG.traceRuns && !interrupted; i++) {
      for (const c of cmds) {
        const r = timeOnce(c, { env: { ...ENV, TSNS_TRACE: '1' }, captureStderr: true });
        for (const line of r.stderr.split('\n')) {
          const m = TRACE_RE.exec(line.trim());
          if (m && m[1] === 'plan') plan.get(c.key).push(Number(m[2]));
        }
      }
    }
    // What a run without a profile maps: the library's process, after a run.
    const probe = spawnSync(NODE, ['-e', `const t = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.cjs'))});
      t.run(['true']).then(() => console.log(/libseccomp|libtsns-seccomp/.test(require('fs').readFileSync('/proc/self/maps', 'utf8'))))`], { encoding: 'utf8' });
    const plainMed = median(res.get('plain').times);
    const rows = cmds.map((c) => ({ key: c.key, command: c.label, ...stats(res.get(c.key).times), planMs: median(plan.get(c.key)), failures: res.get(c.key).failures, check: res.get(c.key).check }));
    heading(`7. Seccomp profiles: start-up (ms, ${CFG.cliRuns} runs each, interleaved; the 'plan' phase from TSNS_TRACE, ${CFG.traceRuns} runs)`);
    table(
      ['command', 'median', 'min', 'max', 'over plain', 'plan phase', 'failed'],
      rows.map((r) => [r.command, f1(r.median), f1(r.min), f1(r.max), r.key === 'plain' ? '-' : `+${f1(r.median - plainMed)}`, f2(r.planMs), String(r.failures)]),
    );
    for (const r of rows) if (r.check !== 'ok') out(`note: ${r.command}: first run failed: ${r.check}`);
    const mapsSomething = probe.stdout.trim();
    out(`a run without a profile maps libseccomp or the compiler: ${mapsSomething === 'false' ? 'no' : mapsSomething === 'true' ? 'YES' : `could not tell (${probe.stderr.trim().split('\n')[0]})`}`);
    return { runs: CFG.cliRuns, rows, plainMapsSeccomp: mapsSomething === 'true' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- main
async function main() {
  for (const f of ['dist/index.cjs', 'dist/cli.cjs', 'build/libtsns.so']) {
    if (!existsSync(path.join(ROOT, f))) {
      process.stderr.write(`bench: ${f} is missing: run \`npm run build\` first\n`);
      process.exit(1);
    }
  }
  const t0 = nowNs();
  const m = machine();
  const results = { machine: m, config: CFG, sections: {} };
  out(`machine: nproc ${m.nproc}, ${m.model}, kernel ${m.kernel}, node ${m.node}, ${m.memTotalMiB} MiB RAM${QUICK ? ' (--quick)' : ''}`);
  out(`load average at start: ${m.loadavg.map((x) => x.toFixed(2)).join(' ')} (other work on the machine shows up in every number below)`);
  if (!IS_ROOT) out('note: not root: tsns runs with -r, unshare with -r, the API with mapRootUser, the C loop with CLONE_NEWUSER');

  // Measured in this order; printed in section order. The heap workers of
  // section 4 allocate while section 5 runs (it only reads VmRSS).
  let heapWorkers = null;
  const sections = [
    [1, 'cli', sectionCli],
    [2, 'trace', sectionTrace],
    [3, 'throughput', sectionThroughput],
    [5, 'resident', () => {
      heapWorkers = prepareHeapWorkers();
      return sectionResident();
    }],
    [4, 'heap', () => sectionHeap(heapWorkers)],
    [6, 'scale', sectionScale],
    [7, 'seccomp', sectionSeccomp],
    [8, 'cgroup', () => sectionCgroup({ out, table, heading, progress, interleaved, runWorker, CFG: { ...CFG, quick: QUICK }, IS_ROOT, NODE, BIN, which, nowNs, nsToMs, f1, f2 })],
    [9, 'oci', () => sectionOci({ out, table, heading, progress, CFG: { ...CFG, quick: QUICK }, IS_ROOT, f1 })],
  ];
  const printed = new Map();
  let next = 1;
  for (const [num, name, fn] of sections) {
    if (interrupted) break;
    const s0 = nowNs();
    outBuffer = [];
    try {
      results.sections[name] = await fn();
      results.sections[name].elapsedSeconds = nsToMs(nowNs() - s0) / 1000;
      progress(`   ${name} took ${(nsToMs(nowNs() - s0) / 1000).toFixed(1)} s`);
    } catch (e) {
      results.sections[name] = { error: String(e?.message ?? e) };
      heading(`${num}. ${name}: could not be measured`);
      out(String(e?.message ?? e));
    }
    printed.set(num, outBuffer);
    outBuffer = null;
    while (printed.has(next)) {
      for (const line of printed.get(next)) out(line);
      next++;
    }
  }
  if (heapWorkers) await Promise.all([heapWorkers.small.abort(), heapWorkers.large.abort()]);
  // After an interruption some sections never ran: print what was measured.
  for (const num of [...printed.keys()].sort((a, b) => a - b)) {
    if (num >= next) for (const line of printed.get(num)) out(line);
  }
  const left = childrenOf(process.pid);
  results.childrenLeft = left.length;
  results.totalSeconds = nsToMs(nowNs() - t0) / 1000;
  results.loadavgAtEnd = os.loadavg();
  out();
  out(`load average at end: ${results.loadavgAtEnd.map((x) => x.toFixed(2)).join(' ')}`);
  out(`total ${f1(results.totalSeconds)} s${left.length ? `; WARNING: ${left.length} child processes still present` : ''}`);
  if (interrupted) {
    results.interrupted = true;
    out('(interrupted: the remaining sections were skipped)');
  }
  if (JSON_OUT) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  if (interrupted) process.exitCode = 130;
}

await main();
