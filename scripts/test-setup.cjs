#!/usr/bin/env node
/**
 * The system tools tsns's tests drive, and the Debian packages that have
 * them: the one list, read by `npm test` (which runs this first), by .ci/run
 * (before `npm ci`, which needs the compiler) and by test/e2e/helpers.ts
 * (a test that needs a missing tool is skipped, naming the package).
 *
 * Run as root on Debian or Ubuntu it installs what is missing with apt-get;
 * otherwise it prints one line saying exactly what to install, and the
 * tests that need those tools are skipped. Under CI=true a missing tool is
 * a failure. TSNS_TEST_INSTALL=no only checks.
 *
 * To add a tool: one row — the command, its package(s), what needs it.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

/** @type {{ command: string, file?: string, packages: string[], for: string }[]} */
const TOOLS = [
  { command: 'cc', packages: ['gcc', 'libc6-dev'], for: 'building the native shim (npm ci) and the tests\' C fixtures' },
  // Where `file` is given, it is what must exist (a header, a program outside PATH).
  { command: 'seccomp.h', file: '/usr/include/seccomp.h', packages: ['libseccomp-dev'], for: 'building the seccomp profile compiler' },
  { command: 'podman', packages: ['podman'], for: 'seccomp profiles next to podman + runc; podman driving tsns-oci' },
  { command: 'runc', file: '/usr/sbin/runc', packages: ['runc'], for: 'seccomp profiles next to podman + runc; the cgroup files runc writes' },
  { command: 'busybox', file: '/bin/busybox', packages: ['busybox-static'], for: 'root filesystems for containers' },
  { command: 'setpriv', packages: ['util-linux'], for: 'the runs as user 65534' },
  { command: 'unshare', packages: ['util-linux'], for: 'comparisons with unshare, test targets' },
  { command: 'nsenter', packages: ['util-linux'], for: 'comparisons with nsenter' },
  { command: 'lsns', packages: ['util-linux'], for: 'comparisons with lsns' },
  { command: 'umount', packages: ['mount'], for: 'releasing persisted namespaces' },
  { command: 'ps', packages: ['procps'], for: 'pid namespace checks' },
  { command: 'pgrep', packages: ['procps'], for: 'finding leftover processes' },
  { command: 'ip', packages: ['iproute2'], for: 'network namespace checks, NETNSID' },
  { command: 'awk', packages: ['mawk'], for: 'reading /proc in scripts' },
  { command: 'ping', packages: ['iputils-ping'], for: 'capability checks in the sandbox' },
  { command: 'newuidmap', packages: ['uidmap'], for: 'id ranges without root; rootless podman' },
  { command: 'newgidmap', packages: ['uidmap'], for: 'id ranges without root' },
  { command: 'tmux', packages: ['tmux'], for: 'a real terminal' },
  { command: 'systemd', file: '/lib/systemd/systemd', packages: ['systemd'], for: "a systemd of the tests' own for tsns-oci --systemd-cgroup (systemctl, its unit properties)" },
  { command: 'script', packages: ['bsdutils'], for: 'a real terminal' },
  { command: 'bwrap', packages: ['bubblewrap'], for: 'comparisons with bwrap' },
  { command: 'mkfifo', packages: ['coreutils'], for: 'fifo targets' },
  { command: 'bash', packages: ['bash'], for: 'sockets of test targets (/dev/udp)' },
  { command: 'conmon', packages: ['conmon'], for: 'podman driving tsns-oci and runc' },
  { command: 'containerd', packages: ['containerd'], for: 'containerd driving tsns-oci and runc (a private containerd per test file)' },
  { command: 'ctr', packages: ['containerd'], for: 'containerd driving tsns-oci and runc' },
  { command: 'containerd-shim-runc-v2', packages: ['containerd'], for: 'containerd\'s runc shim, which execs tsns-oci' },
  { command: 'tar', packages: ['tar'], for: 'images made offline from a busybox root (podman import)' },
  { command: 'crun', packages: ['crun'], for: 'the OCI benchmark, crun next to runc and tsns-oci (where the cgroup layout lets it run)' },
];

function hasCommand(name, path = process.env.PATH ?? '') {
  return path.split(':').some((d) => d !== '' && existsSync(join(d, name)));
}

function tool(name) {
  return TOOLS.find((t) => t.command === name);
}

/** The Debian packages for these commands, each once. */
function packagesFor(names) {
  return [...new Set(names.flatMap((n) => tool(n)?.packages ?? []))];
}

/** `ping (iputils-ping)`, for messages. */
function describeTools(names) {
  return names.map((n) => `${n} (${(tool(n)?.packages ?? ['?']).join(' ')})`).join(', ');
}

function present(t) {
  return t.file ? existsSync(t.file) : hasCommand(t.command);
}

function missing() {
  return TOOLS.filter((t) => !present(t)).map((t) => t.command);
}

function canInstall() {
  if (process.env.TSNS_TEST_INSTALL === 'no') return false;
  return process.geteuid?.() === 0 && existsSync('/etc/debian_version') && hasCommand('apt-get');
}

function apt(args) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const r = spawnSync('apt-get', args, { env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function install(packages) {
  // A fresh machine has no package lists; an old list may name versions gone.
  let r = apt(['install', '-y', '-qq', '--no-install-recommends', ...packages]);
  if (!r.ok) {
    const update = apt(['update', '-qq']);
    if (!update.ok) return update;
    r = apt(['install', '-y', '-qq', '--no-install-recommends', ...packages]);
  }
  return r;
}

function main() {
  const ci = process.env.CI === 'true';
  let absent = missing();
  if (absent.length === 0) return 0;
  const packages = packagesFor(absent);
  if (canInstall()) {
    console.log(`tsns test set-up: installing ${packages.join(' ')} (for ${absent.join(', ')})`);
    const r = install(packages);
    if (!r.ok) console.error(r.output.trim().split('\n').slice(-5).join('\n'));
    absent = missing();
    if (absent.length === 0) return 0;
  }
  const line = `tsns test set-up: missing ${describeTools(absent)} — to install: apt-get install ${packagesFor(absent).join(' ')}`;
  if (ci) {
    console.error(`${line} (required on CI)`);
    return 1;
  }
  console.error(`${line} — until then the tests that need them are skipped`);
  return 0;
}

module.exports = { TOOLS, hasCommand, present, packagesFor, describeTools };

if (require.main === module) process.exitCode = main();
