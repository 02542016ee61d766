import { execa } from 'execa';
import { createRequire } from 'node:module';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { denyMkdirFilter, IS_ROOT, MODES, ROOT, USER } from './helpers';

// The built package, as a user's program loads it.
const tsns = createRequire(import.meta.url)(join(ROOT, 'dist', 'index.cjs')) as typeof import('../../src/index');

const dir = mkdtempSync(join(tmpdir(), 'tsns-api-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run a snippet that uses the staged package as the unprivileged user; it prints JSON. */
async function asUser(snippet: string): Promise<unknown> {
  const lib = join(inject('stagedRoot'), 'dist', 'index.cjs');
  const code = `const tsns = require(${JSON.stringify(lib)});\n(async () => { console.log(JSON.stringify(await (${snippet}))); })()` +
    `.catch((e) => { console.log(JSON.stringify({ error: e.name, stage: e.stage, errno: e.errno, message: e.message, hint: e.hint })); });`;
  const r = await execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', process.execPath, '-e', code], {
    cwd: '/',
    reject: false,
  });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

/**
 * A program that runs commands from two worker threads (where Node delivers
 * no signals) and prints what they got, with its thread and fd counts
 * before and after the workers ended. Only the workers load tsns.
 */
function workerProgram(lib: string, opts: object): string {
  const o = JSON.stringify(opts);
  const worker = `const { parentPort } = require('node:worker_threads');
    const tsns = require(${JSON.stringify(lib)});
    const code = (r) => r.exitCode;
    (async () => {
      const seq = [];
      for (let i = 0; i < 5; i++) seq.push(code(await tsns.run(['sh', '-c', 'exit ' + i], ${o})));
      const par = await Promise.all([1, 2, 3].map((i) => tsns.run(['sh', '-c', 'sleep 0.1; exit ' + i], ${o}).then(code)));
      const piped = (await tsns.run(['echo', 'hi'], { ...${o}, stdio: 'pipe' })).stdout;
      const killed = (await tsns.run(['sleep', '10'], { ...${o}, timeout: 100 })).signal;
      // Node delivers no signals here to forward: refused before anything starts.
      const forward = await tsns.run(['true'], { ...${o}, forwardSignals: true }).then(() => 'ran', (e) => e.stage);
      parentPort.postMessage({ seq, par, piped, killed, forward });
    })();`;
  return `const { Worker } = require('node:worker_threads');
    const { readdirSync } = require('node:fs');
    const count = () => ({ threads: readdirSync('/proc/self/task').length, fds: readdirSync('/proc/self/fd').length });
    const spawnWorker = (code) => new Promise((resolve, reject) => {
      const w = new Worker(code, { eval: true });
      let got;
      w.on('message', (m) => (got = m));
      w.on('error', reject);
      w.on('exit', () => resolve(got));
    });
    (async () => {
      // Node keeps an fd of its own from the first worker on.
      await spawnWorker('0');
      const before = count();
      const results = await Promise.all([0, 1].map(() => spawnWorker(${JSON.stringify(worker)})));
      // The shim's watcher threads end once they see their control pipe close.
      let after = count();
      for (let i = 0; i < 100 && (after.threads !== before.threads || after.fds !== before.fds); i++) {
        await new Promise((r) => setTimeout(r, 20));
        after = count();
      }
      console.log(JSON.stringify({ results, before, after }));
    })();`;
}

const WORKER_RESULT = { seq: [0, 1, 2, 3, 4], par: [1, 2, 3], piped: 'hi\n', killed: 'SIGKILL', forward: 'option' };

/** What workerProgram printed: each worker got its results, and nothing was left behind. */
function expectWorkerResults(r: { stderr: unknown; stdout: unknown; exitCode?: number }): void {
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  const out = JSON.parse(String(r.stdout));
  expect(out.results).toEqual([WORKER_RESULT, WORKER_RESULT]);
  expect(out.after).toEqual(out.before);
}

describe.runIf(IS_ROOT)('run() as root', () => {
  it('resolves with the exit code and pid', async () => {
    const r = await tsns.run(['sh', '-c', 'exit 3'], { uts: true });
    expect(r.exitCode).toBe(3);
    expect(r.signal).toBeNull();
    expect(r.pid).toBeGreaterThan(1);
  });

  it('reports a signal death as a result, not an error', async () => {
    const r = await tsns.run(['sh', '-c', 'kill -KILL $$'], { uts: true });
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
  });

  it('never blocks the event loop while waiting', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const r = await tsns.run(['sleep', '0.3'], { uts: true });
    clearInterval(timer);
    expect(r.exitCode).toBe(0);
    expect(ticks).toBeGreaterThan(5);
  });

  it('runs many commands at once, each with its own result', async () => {
    const results = await Promise.all(
      Array.from({ length: 32 }, (_, i) => tsns.run(['sh', '-c', `sleep 0.2; exit ${i}`], { uts: true, pid: true, ipc: true })),
    );
    expect(results.map((r) => r.exitCode)).toEqual(Array.from({ length: 32 }, (_, i) => i));
    expect(new Set(results.map((r) => r.pid)).size).toBe(32);
  });

  it('gives the command its own namespaces and the options as the CLI has them', async () => {
    const host = readlinkSync('/proc/self/ns/uts');
    const out = await execa(process.execPath, ['-e', `
      require(${JSON.stringify(join(ROOT, 'dist', 'index.cjs'))})
        .run(['sh', '-c', 'readlink /proc/self/ns/uts; hostname'], { hostname: 'api', env: { PATH: '/usr/bin:/bin' } })
        .then((r) => process.exit(r.exitCode));`]);
    const [ns, name] = out.stdout.split('\n');
    expect(ns).not.toBe(host);
    expect(name).toBe('api');
  });

  it('rejects with TsnsError for its own failures, including exec', async () => {
    await expect(tsns.run(['no-such-command-tsns'], { uts: true })).rejects.toMatchObject({
      name: 'TsnsError', stage: 'exec', errno: 'ENOENT', exitCode: 127,
    });
    await expect(tsns.run(['true'], { hostname: 'x'.repeat(70) })).rejects.toBeInstanceOf(tsns.TsnsError);
  });

  it('stdio: pipe captures output, input feeds stdin, ignore gives /dev/null, a number passes an fd', async () => {
    const piped = await tsns.run(['sh', '-c', 'cat; echo err >&2'], { uts: true, stdio: 'pipe', input: 'fed\n' });
    expect(piped).toMatchObject({ exitCode: 0, stdout: 'fed\n', stderr: 'err\n' });
    const ignored = await tsns.run(['sh', '-c', 'readlink /proc/self/fd/0'], { uts: true, stdio: ['ignore', 'pipe', 'inherit'] });
    expect(ignored.stdout).toBe('/dev/null\n');
    const file = join(dir, 'out');
    const fd = openSync(file, 'w');
    try {
      await tsns.run(['echo', 'to-file'], { uts: true, stdio: ['ignore', fd, 'inherit'] });
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(file, 'utf8')).toBe('to-file\n');
  });

  it('timeout kills the command and says so', async () => {
    const r = await tsns.run(['sleep', '30'], { pid: true, timeout: 200 });
    expect(r).toMatchObject({ exitCode: null, signal: 'SIGKILL', timedOut: true });
  });

  it('an AbortSignal kills the command; one already aborted starts nothing', async () => {
    const ac = new AbortController();
    const p = tsns.run(['sleep', '30'], { uts: true, signal: ac.signal, killSignal: 'SIGTERM' });
    setTimeout(() => ac.abort(), 100);
    expect(await p).toMatchObject({ signal: 'SIGTERM', aborted: true });
    await expect(tsns.run(['true'], { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'TsnsError' });
  });

  it('env adds to the environment, clearEnv starts from nothing', async () => {
    const added = await tsns.run(['sh', '-c', 'echo "$A:$HOME"'], { env: { A: 'a' }, stdio: 'pipe' });
    expect(added.stdout).toBe(`a:${process.env.HOME}\n`);
    const clear = await tsns.run(['/usr/bin/env'], { clearEnv: true, env: { ONLY: '1' }, stdio: 'pipe' });
    // As bwrap: PWD is set with a cleared environment.
    expect(clear.stdout).toBe(`ONLY=1\nPWD=${process.cwd()}\n`);
  });

  it('works from worker threads, and workers that end leave no thread or fd behind', async () => {
    const r = await execa(process.execPath, ['-e', workerProgram(join(ROOT, 'dist', 'index.cjs'), { uts: true })], { reject: false });
    expectWorkerResults(r);
  });

  it('a worker terminated while its command runs: the command is still reaped, the watcher goes', async () => {
    const lib = JSON.stringify(join(ROOT, 'dist', 'index.cjs'));
    const r = await execa(process.execPath, ['-e', `
      const { Worker } = require('node:worker_threads');
      const fs = require('node:fs');
      const threads = () => fs.readdirSync('/proc/self/task').length;
      // Our children, and how many of them are zombies.
      const children = () => fs.readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).map((p) => {
        try {
          const st = fs.readFileSync('/proc/' + p + '/stat', 'utf8');
          const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
          return Number(f[1]) === process.pid ? f[0] : null;
        } catch { return null; }
      }).filter((s) => s !== null);
      (async () => {
        await new Promise((r) => new Worker('0', { eval: true }).on('exit', r));
        const before = threads();
        const w = new Worker(\`const { parentPort } = require('node:worker_threads');
          require(${lib}).run(['sleep', '0.5'], { uts: true, onStart: () => parentPort.postMessage('started') });\`, { eval: true });
        await new Promise((r) => w.on('message', r));
        await w.terminate();
        const during = children();
        let after = children();
        for (let i = 0; i < 150 && (after.length || threads() !== before); i++) {
          await new Promise((r) => setTimeout(r, 20));
          after = children();
        }
        console.log(JSON.stringify({ during, after, threads: threads() - before }));
      })();`], { reject: false, timeout: 20000 });
    expect(r.stderr).toBe('');
    // The sleep outlived its worker (alive: sleeping, or still running on a busy machine, not a
    // zombie), then ended and was reaped by the shim's watcher, which then ended too.
    const seen = JSON.parse(r.stdout) as { during: string[]; after: string[]; threads: number };
    expect(seen.during).toHaveLength(1);
    expect(['S', 'R']).toContain(seen.during[0]);
    expect({ after: seen.after, threads: seen.threads }).toEqual({ after: [], threads: 0 });
  });

  it('a run refused before it starts, or whose onStart throws, leaves nothing behind', async () => {
    // In a plain Node process, which must then end by itself.
    const r = await execa(process.execPath, ['-e', `
      const tsns = require(${JSON.stringify(join(ROOT, 'dist', 'index.cjs'))});
      const fds = () => require('node:fs').readdirSync('/proc/self/fd').length;
      (async () => {
        const before = fds();
        const why = [];
        for (const [cmd, opts] of [[['echo', 'a\\0b'], { stdio: 'pipe' }], [['true'], { env: { 'A=B': 'x' } }], [['true'], { env: { '': 'x' } }]]) {
          await tsns.run(cmd, opts).then(() => why.push('ran'), (e) => why.push(e.stage + ': ' + e.message));
        }
        // A throwing onStart: the command is killed and reaped, the error passed on.
        await tsns.run(['sleep', '30'], { stdio: 'pipe', onStart: () => { throw new Error('from onStart'); } })
          .then(() => why.push('ran'), (e) => why.push(e.message));
        console.log(JSON.stringify({ why, leaked: fds() - before }));
      })();`], { reject: false, timeout: 20000 });
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      why: [
        'spec: an argument or environment entry contains a NUL byte: "a\\u0000b"',
        'option: env: a variable\'s name cannot contain \'=\': "A=B"',
        'option: env: a variable needs a name',
        'from onStart',
      ],
      leaked: 0,
    });
  });

  it('seccomp: compiled programs as bytes, loaded last', async () => {
    const target = join(dir, 'seccomp-denied');
    const r = await tsns.run(['mkdir', target], { seccomp: [denyMkdirFilter()], stdio: 'pipe' });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/Operation not permitted/);
    expect(existsSync(target)).toBe(false);
    await expect(tsns.run(['true'], { seccomp: [new Uint8Array(3)] })).rejects.toMatchObject({ name: 'TsnsError', stage: 'plan' });
  });

  it('the ESM entry exports the same implementation', async () => {
    // In a plain Node process: the test runner has a module graph of its own.
    const out = await execa(process.execPath, ['--input-type=module', '-e', `
      import { createRequire } from 'node:module';
      const esm = await import(${JSON.stringify(join(ROOT, 'dist', 'index.mjs'))});
      const cjs = createRequire(import.meta.url)(${JSON.stringify(join(ROOT, 'dist', 'index.cjs'))});
      console.log(esm.TsnsError === cjs.TsnsError && esm.run === cjs.run && typeof esm.default.run);`]);
    expect(out.stdout).toBe('function');
  });
});

describe.runIf(MODES.includes('user') && IS_ROOT)('run() unprivileged', () => {
  it('maps the caller to root in a new user namespace', async () => {
    const r = await asUser(`tsns.run(['sh', '-c', 'test "$(id -u)" = 0'], { mapRootUser: true, env: { PATH: '/usr/bin:/bin' } })`);
    expect(r).toMatchObject({ exitCode: 0, signal: null });
  });

  it('works from worker threads', async () => {
    const lib = join(inject('stagedRoot'), 'dist', 'index.cjs');
    const r = await execa('setpriv', [`--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', process.execPath, '-e',
      workerProgram(lib, { mapRootUser: true, env: { PATH: '/usr/bin:/bin' } })], { cwd: '/', reject: false });
    expectWorkerResults(r);
  });

  it('rejects a namespace it may not create with stage, errno and hint', async () => {
    const r = await asUser(`tsns.run(['true'], { net: true })`);
    expect(r).toMatchObject({ error: 'TsnsError', stage: 'clone', errno: 'EPERM' });
    expect((r as { hint: string }).hint).toMatch(/--user/);
  });
});
