// Section 9 of the bench: tsns-oci next to runc (and crun where it runs) on one busybox bundle.
//
//   calls:  create, start, state, kill, delete, each timed on its own (a container running sleep)
//   start:  create + start, the container's own start (until its process runs the command)
//   run:    a whole `run` of /bin/true
//   podman: `podman run --rm --rootfs DIR true` with each runtime (private store, no network; the
//           runtime's default --root, as podman's cleanup passes no runtime flags)
//   node:   `node -e 0`, the floor of any call of a Node program
//   before: with TSNS_OCI_BEFORE=PATH (another tree's bin/tsns-oci.js), that build too, as the column 'before'
//   RSS:    what stays resident after `create`: the process the pid file names (runc init, or
//           tsns-oci's blocked helper) and its descendants
//
// Root only, with a private --root for every runtime; rounds are interleaved (runc, tsns-oci,
// crun, runc, …) so that drift of the machine spreads over all of them. Also runs alone:
// `node bench/oci.mjs [--quick] [--json]`.
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, openSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { descendantsOf, median, nowNs, nsToMs, stats, vmRssKiB, which } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const NODE = process.execPath;


/** The runtimes to compare: runc first (the reference), tsns-oci, crun. */
export function ociRuntimes() {
  const out = [];
  const runc = existsSync('/usr/sbin/runc') ? '/usr/sbin/runc' : which('runc');
  if (runc) out.push({ name: 'runc', path: runc });
  const tsnsOci = path.join(ROOT, 'bin', 'tsns-oci.js');
  if (existsSync(tsnsOci)) out.push({ name: 'tsns-oci', path: tsnsOci });
  // TSNS_OCI_BEFORE=/other/tree/bin/tsns-oci.js: another build of tsns-oci in the same run, to compare a change with what it changed.
  const before = process.env.TSNS_OCI_BEFORE;
  if (before && existsSync(before)) out.push({ name: 'before', path: path.resolve(before) });
  const crun = which('crun');
  if (crun) out.push({ name: 'crun', path: crun });
  return out;
}

function rootfs(dir) {
  mkdirSync(path.join(dir, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'etc']) mkdirSync(path.join(dir, d), { recursive: true });
  copyFileSync('/bin/busybox', path.join(dir, 'bin', 'busybox'));
  chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const t of ['sh', 'true', 'sleep']) symlinkSync('busybox', path.join(dir, 'bin', t));
  writeFileSync(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  return dir;
}

/** A bundle as `runc spec` makes it, trimmed to what every runtime here runs. */
function bundle(dir, args) {
  mkdirSync(dir, { recursive: true });
  rootfs(path.join(dir, 'rootfs'));
  const config = {
    ociVersion: '1.0.2-dev',
    process: { terminal: false, user: { uid: 0, gid: 0 }, args, env: ['PATH=/bin'], cwd: '/', noNewPrivileges: true,
      capabilities: Object.fromEntries(['bounding', 'effective', 'permitted'].map((k) => [k, ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']])) },
    root: { path: 'rootfs', readonly: true },
    hostname: 'bench',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    ],
    linux: { namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }], maskedPaths: ['/proc/kcore'], readonlyPaths: ['/proc/sys'] },
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  return dir;
}

let errFile = null;

/**
 * One timed call. stderr goes to a file, not a pipe: after `create` the
 * container's process holds the stdio it was given until `start`, and a pipe
 * would keep the call "running" until then.
 */
function timed(file, args, opts = {}) {
  const fd = openSync(errFile, 'w');
  const t0 = nowNs();
  let r;
  try {
    r = spawnSync(file, args, { stdio: ['ignore', 'ignore', fd], timeout: 30_000, env: opts.env ?? process.env });
  } finally {
    closeSync(fd);
  }
  const ms = nsToMs(nowNs() - t0);
  const err = r.status === 0 ? '' : (readFileSync(errFile, 'utf8') || r.error?.message || `exit ${r.status ?? r.signal}`).trim().split('\n')[0];
  return { ms, ok: r.status === 0, err };
}

function stateOf(rt, root, id) {
  const r = spawnSync(rt.path, ['--root', root, 'state', id], { encoding: 'utf8' });
  try {
    return JSON.parse(r.stdout).status;
  } catch {
    return null;
  }
}

/** One lifecycle: create, (RSS), start, state, kill, (wait for stopped), delete; times per call. */
function lifecycle(rt, dir, id) {
  const root = path.join(dir, `state-${rt.name}`);
  const pidFile = path.join(dir, `${id}.pid`);
  const b = path.join(dir, 'sleep');
  const res = { id };
  const step = (name, args) => {
    const r = timed(rt.path, ['--root', root, ...args]);
    res[name] = r.ms;
    if (!r.ok && !res.failed) res.failed = `${name}: ${r.err}`;
    return r.ok;
  };
  try {
    if (!step('create', ['create', '--bundle', b, '--pid-file', pidFile, id])) return res;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    const procs = [{ pid }, ...descendantsOf(pid)];
    res.rssKiB = procs.reduce((s, p) => s + (vmRssKiB(p.pid) ?? 0), 0);
    res.rssComm = procs.map((p) => readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim()).join('+');
    if (!step('start', ['start', id])) return res;
    res.createStart = res.create + res.start;
    if (!step('state', ['state', id])) return res;
    if (!step('kill', ['kill', id, 'KILL'])) return res;
    const deadline = Date.now() + 5000;
    while (stateOf(rt, root, id) !== 'stopped' && Date.now() < deadline) spawnSync('sleep', ['0.005']);
    step('delete', ['delete', id]);
    return res;
  } finally {
    spawnSync(rt.path, ['--root', root, 'delete', '--force', id], { stdio: 'ignore' });
    rmSync(pidFile, { force: true });
  }
}

function podmanRun(rt, dir, rootfsDir) {
  const w = path.join(dir, `podman-${rt.name}`);
  const conf = path.join(dir, 'containers.conf');
  const env = { ...process.env, CONTAINERS_CONF: conf };
  return timed('podman', ['--root', path.join(w, 'storage'), '--runroot', path.join(w, 'runroot'), '--storage-driver', 'vfs', '--runtime', rt.path,
    'run', '--rm', '--network', 'none', '--rootfs', rootfsDir, '/bin/true'], { env });
}

export async function sectionOci(h) {
  const { out, table, heading, progress, CFG, IS_ROOT, f1 } = h;
  heading('9. tsns-oci next to runc (and crun): each call, a container\'s start, a whole run, podman run, RSS after create');
  if (!IS_ROOT) {
    out('(not root: the OCI runtimes run here as root only)');
    return { skipped: 'not root' };
  }
  let runtimes = ociRuntimes();
  if (!existsSync('/bin/busybox') || runtimes.length === 0) {
    out('(busybox-static or runc not installed: nothing to compare)');
    return { skipped: 'no busybox or runtime' };
  }
  if (!runtimes.some((r) => r.name === 'tsns-oci')) out('note: bin/tsns-oci.js is not there: only the other runtimes are measured');
  const rounds = CFG.quick ? 5 : 20;
  progress(`9. OCI runtimes: ${rounds} interleaved lifecycles, runs and podman runs each of ${runtimes.map((r) => r.name).join(', ')}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsns-bench-oci-'));
  errFile = path.join(dir, 'stderr');
  try {
    bundle(path.join(dir, 'sleep'), ['/bin/sleep', '1000']);
    bundle(path.join(dir, 'true'), ['/bin/true']);
    writeFileSync(path.join(dir, 'containers.conf'), `[containers]\ndefault_ulimits = []\n[engine]\ntmp_dir = ${JSON.stringify(path.join(dir, 'podman-tmp'))}\nevents_logger = "none"\ncgroup_manager = "cgroupfs"\n`);
    const podmanRoot = which('podman') ? rootfs(path.join(dir, 'podman-rootfs')) : null;
    const per = new Map(runtimes.map((r) => [r.name, { life: [], run: [], podman: [], failures: { life: null, run: null, podman: null } }]));
    const node = [];
    for (let i = -1; i < rounds; i++) {
      for (const rt of runtimes) {
        const e = per.get(rt.name);
        const l = lifecycle(rt, dir, `bench-${process.pid}-${rt.name}-${i + 1}`);
        if (l.failed) e.failures.life ??= l.failed;
        else if (i >= 0) e.life.push(l);
        const r = timed(rt.path, ['--root', path.join(dir, `state-${rt.name}`), 'run', '--bundle', path.join(dir, 'true'), `bench-${process.pid}-${rt.name}-run-${i + 1}`]);
        if (!r.ok) e.failures.run ??= r.err;
        else if (i >= 0) e.run.push(r.ms);
        if (podmanRoot) {
          const p = podmanRun(rt, dir, podmanRoot);
          if (!p.ok) e.failures.podman ??= p.err;
          else if (i >= 0) e.podman.push(p.ms);
        }
      }
      const n = timed(NODE, ['-e', '0']);
      if (i >= 0 && n.ok) node.push(n.ms);
    }
    const nodeMed = median(node);
    // A runtime that ran nothing at all (crun on a hybrid cgroup layout) gets one line, not a column of dashes.
    const refused = runtimes.filter((rt) => { const e = per.get(rt.name); return !e.life.length && !e.run.length && !e.podman.length; });
    for (const rt of refused) out(`note: ${rt.name} ran nothing here: ${per.get(rt.name).failures.life ?? per.get(rt.name).failures.run}`);
    const all = runtimes;
    runtimes = runtimes.filter((rt) => !refused.includes(rt));
    const cell = (xs) => (xs.length ? f1(median(xs)) : '-');
    const calls = ['create', 'start', 'state', 'kill', 'delete', 'createStart'];
    const rows = [];
    for (const c of calls) {
      rows.push([c === 'createStart' ? 'create + start (the container\'s start)' : c, ...runtimes.map((rt) => cell(per.get(rt.name).life.map((l) => l[c]))),
        ...(per.has('tsns-oci') ? [ratioOf(per.get('tsns-oci').life.map((l) => l[c]), nodeMed)] : [])]);
    }
    rows.push(['run of /bin/true (whole)', ...runtimes.map((rt) => cell(per.get(rt.name).run)), ...(per.has('tsns-oci') ? [ratioOf(per.get('tsns-oci').run, nodeMed)] : [])]);
    if (podmanRoot) rows.push(['podman run --rm --rootfs DIR /bin/true', ...runtimes.map((rt) => cell(per.get(rt.name).podman)), ...(per.has('tsns-oci') ? ['-'] : [])]);
    rows.push(['node -e 0 (reference)', ...runtimes.map(() => f1(nodeMed)), ...(per.has('tsns-oci') ? ['1.00x'] : [])]);
    out(`median ms over ${rounds} rounds (one warm-up round first)`);
    table(['call', ...runtimes.map((r) => r.name), ...(per.has('tsns-oci') ? ['tsns-oci / node -e 0'] : [])], rows);
    const rssRows = runtimes.map((rt) => {
      const life = per.get(rt.name).life;
      return [rt.name, life.length ? `${f1(median(life.map((l) => l.rssKiB)))} KiB` : '-', life[0]?.rssComm ?? '-'];
    });
    out('resident after create, before start (VmRSS of the pid-file process and its descendants):');
    table(['runtime', 'VmRSS', 'processes'], rssRows);
    for (const rt of runtimes) {
      const f = per.get(rt.name).failures;
      for (const [what, msg] of Object.entries(f)) if (msg) out(`note: ${rt.name}: ${what} failed: ${msg}`);
    }
    return {
      rounds,
      nodeMedianMs: nodeMed,
      runtimes: Object.fromEntries(all.map((rt) => {
        const e = per.get(rt.name);
        return [rt.name, {
          path: rt.path,
          calls: Object.fromEntries(calls.map((c) => [c, stats(e.life.map((l) => l[c]))])),
          run: stats(e.run),
          podman: stats(e.podman),
          rssKiB: median(e.life.map((l) => l.rssKiB)),
          failures: e.failures,
        }];
      })),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function ratioOf(xs, base) {
  return xs.length && base > 0 ? `${(median(xs) / base).toFixed(2)}x` : '-';
}

// Alone: node bench/oci.mjs [--quick] [--json]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
  const out = (l = '') => {
    if (!json) process.stdout.write(`${l}\n`);
  };
  const table = (headers, rows) => {
    const cells = [headers, ...rows].map((r) => r.map((c) => String(c ?? '')));
    const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
    for (const [k, r] of cells.entries()) {
      out(r.map((c, i) => (i > 0 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd());
      if (k === 0) out(widths.map((w) => '-'.repeat(w)).join('  '));
    }
  };
  const res = await sectionOci({
    out, table, f1,
    heading: (t) => out(`\n== ${t}`),
    progress: (m) => process.stderr.write(`bench: ${m}\n`),
    CFG: { quick: argv.includes('--quick') },
    IS_ROOT: process.geteuid() === 0,
  });
  if (json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
}
