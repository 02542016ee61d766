#!/usr/bin/env node
// Bundles the library and the CLI into CommonJS files (a bundle starts faster
// than a tree of ES modules), writes the ESM entry and the type declarations.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const common = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['ffi-rs', '@yuuang/*'], logLevel: 'error' };
// The CLI's cgroup machinery is a bundle of its own (dist/cgroup.cjs), loaded only by a run that asks
// for a cgroup: src/cgroup/lazy-cli.ts, which requires it, takes lazy.ts's place in the CLI.
const cgroupApart = {
  name: 'cgroup-apart',
  setup(b) {
    b.onResolve({ filter: /cgroup\/lazy$/ }, () => ({ path: fileURLToPath(new URL('../src/cgroup/lazy-cli.ts', import.meta.url)) }));
    b.onResolve({ filter: /^\.\/cgroup\.cjs$/ }, () => ({ path: './cgroup.cjs', external: true }));
    b.onResolve({ filter: /^\.\/oci\.cjs$/ }, () => ({ path: './oci.cjs', external: true }));
  },
};
await Promise.all([
  build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/index.cjs' }),
  // commander (help) and chalk (colour) are loaded only when used: kept out of the CLI's bundle.
  build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.cjs', minify: true, external: ['ffi-rs', '@yuuang/*', 'commander', 'chalk'], plugins: [cgroupApart] }),
  build({ ...common, entryPoints: ['src/cgroup/index.ts'], outfile: 'dist/cgroup.cjs', minify: true }),
  // tsns-oci (bin/tsns-oci.js, and `tsns oci`): a bundle of its own.
  build({ ...common, entryPoints: ['src/oci/main.ts'], outfile: 'dist/oci.cjs', minify: true }),
]);
// tsns-oci's bundle gets a stamp (its hash, as its last line) and V8's code cache, made here by
// loading it as bin/tsns-oci.js does: each call of tsns-oci then skips compiling it (bin/cached-require.js).
const require = createRequire(import.meta.url);
{
  const file = fileURLToPath(new URL('../dist/oci.cjs', import.meta.url));
  const src = readFileSync(file, 'utf8');
  const stamp = createHash('sha256').update(src).digest('hex');
  writeFileSync(file, `${src}// tsns-build ${stamp}\n`);
  const out = {};
  require('../bin/cached-require.js').cachedRequire(file, out);
  writeFileSync(`${file}.cache`, Buffer.concat([Buffer.from(stamp, 'latin1'), out.script.createCachedData()]));
}
// One implementation for both module systems, so TsnsError is the same class
// in each; the ESM entry names exactly what the CommonJS one exports.
const names = Object.keys(require('../dist/index.cjs')).filter((n) => n !== 'default');
writeFileSync('dist/index.mjs', `import tsns from './index.cjs';\nexport const { ${names.join(', ')} } = tsns;\nexport default tsns;\n`);
const tsc = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
process.exit(tsc.status ?? 1);
