// Bench worker: one Node process that uses tsns's API (../dist/index.cjs).
// Started by bench/index.mjs as `node bench/worker.mjs <mode> <json-args>` with an
// IPC channel; sends back one message {ok, result | error} and exits.
//
// modes:
//   throughput  {seconds, otherSeconds, inflight:[..], opts, unshareArgs}
//   latency     {heapMb, runs, warmup, opts}
//   scale       {count, opts}
//   cgroup      {runs, warmup, plain, limits}: run(['true']) with each, interleaved
//
// Every child this process starts is waited for before it exits (PID 1 on the
// bench machine does not reap orphans).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { allProcesses, childrenOf, median, nowNs, nsToMs, sleep, stats, vmRssKiB } from './lib.mjs';

const require = createRequire(import.meta.url);
const tsns = require('../dist/index.cjs');

const [mode, argText] = process.argv.slice(2);
const args = JSON.parse(argText ?? '{}');

// Interrupted (Ctrl-C reaches the whole process group, or the bench sends
// SIGTERM): stop starting commands, reap what is running, then exit normally.
let stopping = false;
let wakeUp = () => {};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    stopping = true;
    wakeUp();
  });
}

function reply(msg) {
  return new Promise((resolve) => {
    if (!process.send) {
      process.stdout.write(`${JSON.stringify(msg)}\n`);
      resolve();
      return;
    }
    process.send(msg, () => {
      process.disconnect();
      resolve();
    });
  });
}

/** Run `once` back to back in `inflight` lanes until `seconds` have passed. */
async function loop(seconds, inflight, once) {
  const t0 = nowNs();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  let runs = 0;
  let failures = 0;
  let firstError;
  async function lane() {
    while (nowNs() < deadline && !stopping) {
      try {
        const ok = await once();
        if (!ok) failures++;
      } catch (e) {
        failures++;
        firstError ??= String(e?.message ?? e);
      }
      runs++;
    }
  }
  await Promise.all(Array.from({ length: inflight }, lane));
  const elapsed = nsToMs(nowNs() - t0) / 1000;
  return { inflight, runs, seconds: elapsed, runsPerSec: runs / elapsed, failures, firstError };
}

function cpSpawnOnce(file, argv) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) => resolve(code === 0));
  });
}

async function throughput() {
  const { seconds, otherSeconds, inflight, opts, unshareArgs } = args;
  const apiOnce = async () => (await tsns.run(['true'], opts)).exitCode === 0;
  const out = { api: [], childProcess: [], execa: null };

  // Warm up the native binding (first run loads ffi-rs and the shim).
  await apiOnce();
  out.api.push(await loop(seconds, 1, apiOnce));
  for (const n of inflight) out.api.push(await loop(otherSeconds, n, apiOnce));

  const cpOnce = () => cpSpawnOnce('unshare', unshareArgs);
  await cpOnce();
  out.childProcess.push(await loop(otherSeconds, 1, cpOnce));
  out.childProcess.push(await loop(otherSeconds, 8, cpOnce));

  let execa;
  try {
    ({ execa } = await import('execa'));
  } catch (e) {
    out.execa = { unavailable: String(e?.message ?? e).split('\n')[0] };
  }
  if (execa) {
    const execaOnce = async () => (await execa('unshare', unshareArgs, { stdio: 'inherit', reject: false })).exitCode === 0;
    await execaOnce();
    out.execa = [await loop(otherSeconds, 1, execaOnce), await loop(otherSeconds, 8, execaOnce)];
  }
  return out;
}

function allocateArrays(mb) {
  // Arrays of unboxed doubles, 64 Ki elements (512 KiB) each, kept referenced.
  const keep = [];
  const perArray = 1 << 16;
  const arrays = Math.ceil((mb * 1024 * 1024) / (perArray * 8));
  for (let j = 0; j < arrays; j++) {
    const a = new Array(perArray);
    for (let i = 0; i < perArray; i++) a[i] = i + j + 0.5;
    keep.push(a);
  }
  return keep;
}

/**
 * ~mb of live memory, every page touched. Up to 256 MB: JS arrays only. Above:
 * half JS arrays, half a SharedArrayBuffer (like a Buffer: outside the V8 heap,
 * inside the process) that a short-lived thread fills meanwhile, because first
 * touch of memory is slow on a VM and two threads fault pages in about half the time.
 */
async function allocate(mb) {
  const keep = [];
  let sabMb = 0;
  let filled = Promise.resolve();
  if (mb > 256) {
    sabMb = Math.floor(mb / 2);
    const sab = new SharedArrayBuffer(sabMb * 1024 * 1024);
    keep.push(sab);
    filled = new Promise((resolve, reject) => {
      const t = new Worker(
        "const { workerData, parentPort } = require('node:worker_threads'); new Float64Array(workerData).fill(0.5); parentPort.postMessage('done');",
        { eval: true, workerData: sab },
      );
      t.once('error', reject);
      t.once('message', () => t.terminate().then(() => resolve(), reject));
    });
  }
  keep.push(allocateArrays(mb - sabMb));
  await filled;
  return { keep, arraysMb: mb - sabMb, sabMb };
}

async function latency() {
  const { heapMb, runs, warmup, opts } = args;
  const t0 = nowNs();
  const { keep, arraysMb, sabMb } = await allocate(heapMb);
  const allocMs = nsToMs(nowNs() - t0);
  globalThis.gc?.();
  const mem = process.memoryUsage();
  if (args.waitForGo && process.send && !stopping) {
    process.send({ ready: true });
    await new Promise((resolve) => {
      wakeUp = resolve;
      process.once('message', resolve);
    });
  }
  if (stopping) throw new Error('interrupted');
  for (let i = 0; i < warmup && !stopping; i++) await tsns.run(['true'], opts);
  const us = [];
  let failures = 0;
  for (let i = 0; i < runs && !stopping; i++) {
    const s = nowNs();
    const r = await tsns.run(['true'], opts);
    us.push(Number(nowNs() - s) / 1e3);
    if (r.exitCode !== 0) failures++;
  }
  const result = {
    heapMb,
    arraysMb,
    sharedArrayBufferMb: sabMb,
    heapUsedMiB: mem.heapUsed / 1048576,
    rssMiB: mem.rss / 1048576,
    allocMs,
    latencyUs: stats(us),
    failures,
    kept: keep.length > 0,
  };
  return result;
}

/** Kill every child of this process and wait until tsns has reaped them. */
async function killAndReap(pending) {
  for (const c of childrenOf(process.pid)) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await Promise.allSettled(pending);
}

async function scale() {
  const { count, opts } = args;
  const pending = [];
  try {
    const rssBeforeKiB = vmRssKiB();
    const t0 = nowNs();
    const startUs = [];
    for (let i = 0; i < count && !stopping; i++) {
      const s0 = nowNs();
      const p = tsns.run(['sleep', '30'], opts);
      startUs.push(Number(nowNs() - s0) / 1e3);
      pending.push(
        p.then(
          (r) => ({ ok: true, r }),
          (e) => ({ ok: false, error: String(e?.message ?? e) }),
        ),
      );
    }
    const startMs = nsToMs(nowNs() - t0);
    const tenth = Math.max(1, Math.floor(count / 10));
    const firstTenthUs = median(startUs.slice(0, tenth));
    const lastTenthUs = median(startUs.slice(-tenth));

    // Confirm every command is alive (and already is `sleep`, i.e. exec'd).
    let procs = childrenOf(process.pid);
    let alive = procs.filter((p) => p.state !== 'Z' && p.comm === 'sleep').length;
    const waitT0 = nowNs();
    while (alive < count && !stopping && nsToMs(nowNs() - waitT0) < 5000) {
      await sleep(20);
      procs = childrenOf(process.pid);
      alive = procs.filter((p) => p.state !== 'Z' && p.comm === 'sleep').length;
    }
    const allAliveMs = nsToMs(nowNs() - t0);
    const rssKiB = vmRssKiB();
    const mem = process.memoryUsage();

    const k0 = nowNs();
    for (const p of procs) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    const settled = await Promise.all(pending);
    const reapMs = nsToMs(nowNs() - k0);
    const failures = settled.filter((s) => !s.ok);
    const killed = settled.filter((s) => s.ok && s.r.signal === 'SIGKILL').length;
    if (stopping) throw new Error('interrupted');
    const mine = allProcesses().filter((p) => p.ppid === process.pid);
    const zombies = mine.filter((p) => p.state === 'Z').length;
    return {
      count,
      startMs,
      perStartUs: (startMs * 1000) / count,
      firstTenthUs,
      lastTenthUs,
      alive,
      allAliveMs,
      rssBeforeKiB,
      rssKiB,
      heapUsedMiB: mem.heapUsed / 1048576,
      reapMs,
      killed,
      failures: failures.length,
      firstFailure: failures[0]?.error,
      zombies,
      childrenLeft: mine.length,
    };
  } finally {
    // On any error above: never leave a child behind.
    if (childrenOf(process.pid).length) await killAndReap(pending);
  }
}

/** One run each way per round: the cost of a cgroup with limits, without Node's start-up. */
async function cgroup() {
  const { runs, warmup, plain, limits } = args;
  const us = { plain: [], limits: [] };
  let failures = 0;
  for (let i = -warmup; i < runs && !stopping; i++) {
    for (const kind of ['plain', 'limits']) {
      const s = nowNs();
      const r = await tsns.run(['true'], kind === 'plain' ? plain : limits);
      if (i >= 0) us[kind].push(Number(nowNs() - s) / 1e3);
      if (r.exitCode !== 0) failures++;
    }
  }
  if (stopping) throw new Error('interrupted');
  return { runs, plainUs: stats(us.plain), limitsUs: stats(us.limits), failures };
}

const modes = { throughput, latency, scale, cgroup };
try {
  if (!modes[mode]) throw new Error(`unknown mode ${mode}`);
  const result = await modes[mode]();
  await reply({ ok: true, result });
} catch (e) {
  await reply({ ok: false, error: String(e?.stack ?? e) });
  process.exitCode = 1;
}
