// Section 8 of the bench: what a cgroup with limits adds to a run, next to runc on the same config.
//
//   CLI:  tsns run --uts true, with and without --memory/--pids-limit/--cpus (interleaved)
//   API:  run(['true'], ...) in one process, with and without the same limits (the cgroup's own
//         cost without Node's start-up around it)
//   runc: runc run of a busybox bundle running /bin/true, without linux.resources and with the
//         same limits, with a private --root
//
// Root only: without root (and no delegated cgroup) tsns refuses the limits, as it should.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median } from './lib.mjs';

const LIMITS = ['--memory=64m', '--pids-limit=100', '--cpus=1'];
const RESOURCES = { memory: { limit: 64 << 20, swap: 128 << 20 }, pids: { limit: 100 }, cpu: { quota: 100000, period: 100000 } };

function bundle(dir, resources) {
  const rootfs = path.join(dir, 'rootfs');
  mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(path.join(rootfs, d), { recursive: true });
  copyFileSync('/bin/busybox', path.join(rootfs, 'bin', 'busybox'));
  symlinkSync('busybox', path.join(rootfs, 'bin', 'true'));
  const config = {
    ociVersion: '1.0.2-dev',
    process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['/bin/true'], env: ['PATH=/bin'], cwd: '/' },
    root: { path: 'rootfs', readonly: true },
    mounts: [{ destination: '/proc', type: 'proc', source: 'proc' }],
    linux: { namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }], ...(resources ? { resources } : {}) },
  };
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
}

/** `runc run` of /bin/true, `runs` times each way, interleaved; per-run ms. */
function runcTimes(runs, which, nowNs, nsToMs) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsns-bench-runc-'));
  const res = { none: [], limits: [], failures: 0, check: 'ok' };
  try {
    bundle(path.join(dir, 'none'), null);
    bundle(path.join(dir, 'limits'), RESOURCES);
    const root = path.join(dir, 'state');
    for (let i = 0; i < runs; i++) {
      for (const kind of ['none', 'limits']) {
        const t0 = nowNs();
        const r = spawnSync(which, ['--root', root, 'run', '--bundle', path.join(dir, kind), `tsns-bench-${process.pid}-${kind}-${i}`], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
        res[kind].push(nsToMs(nowNs() - t0));
        if (r.status !== 0) {
          res.failures++;
          if (res.check === 'ok') res.check = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0];
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return res;
}

export async function sectionCgroup(h) {
  const { out, table, heading, progress, interleaved, runWorker, CFG, IS_ROOT, NODE, BIN, which, nowNs, nsToMs, f1, f2 } = h;
  heading('8. What a cgroup with limits adds to a run (--memory=64m --pids-limit=100 --cpus=1), next to runc');
  if (!IS_ROOT) {
    out('(not root: tsns refuses cgroup limits without a delegated cgroup, so there is nothing to measure)');
    return { skipped: 'not root' };
  }
  progress(`8. cgroup cost: ${CFG.cliRuns} CLI rounds, ${CFG.latencyRuns} API runs each way, runc rounds`);
  const cmds = [
    { key: 'plain', label: 'tsns run --uts true', file: NODE, args: [BIN, 'run', '--uts', 'true'] },
    { key: 'limits', label: `tsns run --uts ${LIMITS.join(' ')} true`, file: NODE, args: [BIN, 'run', '--uts', ...LIMITS, 'true'] },
  ];
  const cli = interleaved(cmds, CFG.cliRuns);
  const api = await runWorker('cgroup', { runs: CFG.latencyRuns, warmup: CFG.latencyWarmup, plain: { uts: true }, limits: { uts: true, memory: '64m', pidsLimit: 100, cpus: '1' } });
  const runc = which('runc') && which('busybox') ? runcTimes(CFG.quick ? 5 : 15, which('runc'), nowNs, nsToMs) : null;

  const med = (xs) => median(xs);
  const rows = [
    ['tsns CLI', `${f1(med(cli.get('plain').times))} ms`, `${f1(med(cli.get('limits').times))} ms`, `+${f1(med(cli.get('limits').times) - med(cli.get('plain').times))} ms`, String(cli.get('plain').failures + cli.get('limits').failures)],
    ['tsns API run(), in one process', `${f2(api.plainUs.median / 1000)} ms`, `${f2(api.limitsUs.median / 1000)} ms`, `+${f2((api.limitsUs.median - api.plainUs.median) / 1000)} ms`, String(api.failures)],
  ];
  if (runc) rows.push(['runc run (busybox /bin/true)', `${f1(med(runc.none))} ms`, `${f1(med(runc.limits))} ms`, `${med(runc.limits) >= med(runc.none) ? '+' : ''}${f1(med(runc.limits) - med(runc.none))} ms`, String(runc.failures)]);
  table(['what (median)', 'no cgroup limits', 'with the limits', 'the limits add', 'failed'], rows);
  if (!runc) out('(runc or busybox not installed: the runc row is omitted)');
  else if (runc.check !== 'ok') out(`note: runc failed: ${runc.check}`);
  for (const c of cmds) if (cli.get(c.key).check !== 'ok') out(`note: ${c.label}: first run failed: ${cli.get(c.key).check}`);
  out('tsns makes the cgroup in the hierarchies the limits use and the v2 one, clones the command into the v2 one');
  out('(clone3 CLONE_INTO_CGROUP) and writes its pid into the v1 ones before it runs; runc joins every hierarchy');
  out(`and runs its own init: its rows are runc run's whole cost, tsns's a run's. API runs: ${api.runs} each way, interleaved.`);
  return {
    cli: Object.fromEntries(cmds.map((c) => [c.key, { medianMs: med(cli.get(c.key).times), failures: cli.get(c.key).failures }])),
    api,
    runc: runc && { noneMedianMs: med(runc.none), limitsMedianMs: med(runc.limits), runs: runc.none.length, failures: runc.failures, check: runc.check },
  };
}
