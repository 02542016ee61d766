#!/usr/bin/env node
// Compiles native/ with the system C compiler; run by `npm install`.
'use strict';
const { spawnSync } = require('node:child_process');
const { mkdirSync, readdirSync, rmSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const native = join(root, 'native');
const cc = process.env.CC || 'cc';
const warnings = ['-O2', '-Wall', '-Wextra', '-Werror'];
// Every C file but the monitor's own main() goes into the shim; end.c (and cgclean.c) in both.
const MONITOR = ['monitor.c', 'end.c', 'cgclean.c'];
// oci-init.c is tsns-oci-init's main() and oci-tty.c its terminal: the shim's files and they make that program.
const OCI_INIT = ['oci-init.c', 'oci-tty.c'];
const shim = readdirSync(native).filter((f) => f.endsWith('.c') && f !== 'monitor.c' && !OCI_INIT.includes(f)).sort();
mkdirSync(join(root, 'build'), { recursive: true });
// Hidden by default: libtsns.so exports only what native/tsns.h declares.
// Bound at load (-z now): the child may not run the dynamic linker, and
// its memcpy (child_exec's paths) is a call through the PLT.
const args = [...warnings, '-fvisibility=hidden', '-shared', '-fPIC', '-Wl,-z,now', '-o', join(root, 'build', 'libtsns.so'), ...shim.map((f) => join(native, f))];
const monitor = [...warnings, '-o', join(root, 'build', 'tsns-monitor'), ...MONITOR.map((f) => join(native, f))];

function compile(a, quiet = false) {
  const r = spawnSync(cc, a, { stdio: quiet ? 'ignore' : 'inherit' });
  if (r.error) {
    console.error(`tsns: cannot run the C compiler '${cc}': ${r.error.message}\nhint: install one (Debian/Ubuntu: apt-get install gcc libc6-dev) or set CC`);
    process.exit(1);
  }
  return r.status === 0;
}

if (!compile(args)) process.exit(1);
// The seccomp profile compiler, a library of its own so that libtsns.so and
// a run without a profile never load libseccomp. Without libseccomp's
// headers it is left out (the profile options then say how to get it).
const seccompLib = join(root, 'build', 'libtsns-seccomp.so');
const seccomp = [...warnings, '-fvisibility=hidden', '-shared', '-fPIC', '-Wl,-z,now', '-o', seccompLib, join(native, 'seccomp', 'compile.c'), '-lseccomp'];
if (!compile(seccomp, true)) {
  rmSync(seccompLib, { force: true });
  console.error('tsns: built without seccomp profiles: libseccomp\'s headers are missing (Debian/Ubuntu: apt-get install libseccomp-dev, then npm run build:native)');
}
// The monitor stays resident while a command runs: linked statically it
// starts a millisecond sooner and holds about 700 KiB instead of 1.2 MiB.
// Without a static libc (libc.a) it is linked as usual.
if (!compile(['-static', ...monitor], true) && !compile(monitor)) process.exit(1);
// tsns-oci-init holds a container from create to start: as small as the monitor, for the same reason.
const ociInit = [...warnings, '-o', join(root, 'build', 'tsns-oci-init'), ...[...shim, ...OCI_INIT].map((f) => join(native, f)), '-lpthread'];
if (!compile(['-static', ...ociInit], true) && !compile(ociInit)) process.exit(1);
