/**
 * Shared by the reliability-*.test.ts files (issue 8): a child-subreaper harness
 * that tells which processes a tsns run left behind, and checks that a failed
 * run created nothing (files, mounts, processes).
 *
 * PID 1 of this machine does not reap orphans, so a process that tsns leaks
 * would become a zombie forever. Every tsns started here runs under `reaper`,
 * a tiny C program made a child subreaper (PR_SET_CHILD_SUBREAPER): whatever
 * tsns leaves behind is reparented to it, reported, killed and reaped.
 */
import { execa, type Options } from 'execa';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { IS_ROOT, ROOT, USER, type Mode } from './helpers';

const REAPER_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* reaper REPORT PROG ARGS...: run PROG as a child subreaper, wait for it, then
 * report in REPORT its status and every process it left behind (reparented to
 * us: "leftover PID STATE COMM"), kill those and reap everything.  Exits, or
 * dies of the signal, as PROG did. */
static int children(pid_t *out, int max)
{
	char path[64], buf[8192];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	int k = 0;
	for (char *save, *w = strtok_r(buf, " \n", &save); w && k < max; w = strtok_r(NULL, " \n", &save))
		out[k++] = atoi(w);
	return k;
}

static void describe(FILE *out, pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(out, "leftover %d ? ?\n", (int)pid);
		return;
	}
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	if (!open || !close || close[1] == 0) {
		fprintf(out, "leftover %d ? ?\n", (int)pid);
		return;
	}
	*close = 0;
	fprintf(out, "leftover %d %c %s\n", (int)pid, close[2], open + 1);
}

static volatile pid_t child;

/* Stopped from outside (a test's timeout): the program goes first. */
static void on_term(int sig)
{
	(void)sig;
	if (child > 0)
		kill(child, SIGKILL);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return 3;
	child = fork();
	if (child < 0)
		return 4;
	if (child == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	int st = 0;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	const char *settle = getenv("REAPER_SETTLE_MS");
	int ms = settle ? atoi(settle) : 20;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	FILE *out = fopen(argv[1], "w");
	if (!out)
		return 5;
	fprintf(out, "status %d\n", st);
	pid_t pids[512];
	int n = children(pids, 512);
	for (int i = 0; i < n; i++)
		describe(out, pids[i]);
	fclose(out);
	/* Kill and reap whatever is left, including what those leave to us. */
	for (int round = 0; round < 1000; round++) {
		n = children(pids, 512);
		for (int i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		int any = 0, x;
		while (waitpid(-1, &x, WNOHANG | __WALL) > 0)
			any = 1;
		if (n == 0 && !any && waitpid(-1, &x, WNOHANG | __WALL) < 0 && errno == ECHILD)
			break;
		struct timespec t = { 0, 5000000L };
		nanosleep(&t, NULL);
	}
	if (WIFSIGNALED(st)) {
		struct rlimit nocore = { 0, 0 };
		setrlimit(RLIMIT_CORE, &nocore);
		signal(WTERMSIG(st), SIG_DFL);
		kill(getpid(), WTERMSIG(st));
		return 128 + WTERMSIG(st);
	}
	return WEXITSTATUS(st);
}
`;

/** A stack trace line as V8 prints it: a user error must never show one. */
export const STACK_TRACE = /\n\s+at /;

/** A scratch directory anyone may write (the unprivileged runs work in it too). */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o1777);
  return dir;
}

let reaperPath: string | null = null;
let reaperDir: string | null = null;

/** Compile the reaper once per test file (cc is needed to build tsns anyway). */
export function reaper(): string {
  if (reaperPath) return reaperPath;
  reaperDir = mkdtempSync(join(tmpdir(), 'tsns-reaper-'));
  chmodSync(reaperDir, 0o755);
  writeFileSync(join(reaperDir, 'reaper.c'), REAPER_C);
  const out = join(reaperDir, 'reaper');
  execFileSync('cc', ['-O2', '-o', out, join(reaperDir, 'reaper.c')], { stdio: 'pipe' });
  chmodSync(out, 0o755);
  reaperPath = out;
  return out;
}

export function removeReaper(): void {
  if (reaperDir) rmSync(reaperDir, { recursive: true, force: true });
  reaperDir = reaperPath = null;
}

/** bin/tsns.js as `mode` may run it: the checkout for root, the staged copy for the test user. */
export function tsnsBin(mode: Mode): string {
  return mode === 'user' && IS_ROOT ? join(inject('stagedRoot'), 'bin', 'tsns.js') : join(ROOT, 'bin', 'tsns.js');
}

/** `argv` run as `mode`: through setpriv for the unprivileged user when we are root. */
export function asMode(mode: Mode, argv: readonly string[]): string[] {
  if (mode === 'user' && IS_ROOT) {
    return ['setpriv', `--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...argv];
  }
  return [...argv];
}

export interface ReapedRun {
  stdout: string;
  stderr: string;
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
  /** processes the run left behind, as "PID STATE COMM" */
  leftovers: string[];
}

/** Run argv under the reaper; the result says what it left behind. */
export async function reaped(argv: readonly string[], opts: Options = {}): Promise<ReapedRun> {
  const dir = mkdtempSync(join(tmpdir(), 'tsns-report-'));
  const report = join(dir, 'report');
  try {
    const quiet = opts.stdio === undefined && opts.input === undefined && opts.stdin === undefined ? { stdin: 'ignore' as const } : {};
    const r = await execa(reaper(), [report, ...argv], {
      reject: false, cwd: '/', timeout: 20_000, forceKillAfterDelay: 1000, ...quiet, ...opts,
    });
    const lines = existsSync(report) ? readFileSync(report, 'utf8').split('\n').filter(Boolean) : [];
    return {
      stdout: String(r.stdout ?? ''),
      stderr: String(r.stderr ?? ''),
      exitCode: r.exitCode,
      signal: r.signal,
      timedOut: r.timedOut,
      leftovers: lines.filter((l) => l.startsWith('leftover ')).map((l) => l.slice('leftover '.length)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** bin/tsns.js as `mode`, under the reaper. */
export function tsnsReaped(mode: Mode, args: readonly string[], opts: Options = {}): Promise<ReapedRun> {
  return reaped(asMode(mode, [process.execPath, tsnsBin(mode), ...args]), opts);
}

/** Mount points in our mount namespace (the host's), each line minus its mount id. */
export function mounts(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').sort();
}

/**
 * New or changed mountinfo lines that could be ours: anything that mentions
 * `dir`, and / and /proc themselves (a leaked propagation change or proc mount).
 * Other test files run at the same time and may mount elsewhere.
 */
export function mountsDiff(before: readonly string[], after: readonly string[], dir: string): string[] {
  const old = new Set(before);
  const relevant = (line: string) => {
    const point = line.split(' ')[4] ?? '';
    return line.includes(dir) || point === '/' || point === '/proc';
  };
  return after.filter((l) => !old.has(l) && relevant(l));
}

/** Every entry under dir, recursively (names relative to dir). */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, prefix: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      out.push(prefix + e.name);
      if (e.isDirectory()) walk(join(d, e.name), `${prefix}${e.name}/`);
    }
  };
  walk(dir, '');
  return out.sort();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
