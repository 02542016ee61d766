#!/usr/bin/env node
// Bundles the library and the CLI into CommonJS files (a bundle starts faster
// than a tree of ES modules), writes the ESM entry and the type declarations.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const common = { bundle: true, platform: 'node', format: 'cjs', target: 'node20', external: ['ffi-rs', '@yuuang/*'], logLevel: 'error' };
await Promise.all([
  build({ ...common, entryPoints: ['src/index.ts'], outfile: 'dist/index.cjs' }),
  // commander (help) and chalk (colour) are loaded only when used: kept out of the CLI's bundle.
  build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.cjs', minify: true, external: ['ffi-rs', '@yuuang/*', 'commander', 'chalk'] }),
]);
// One implementation for both module systems, so TsnsError is the same class
// in each; the ESM entry names exactly what the CommonJS one exports.
const names = Object.keys(createRequire(import.meta.url)('../dist/index.cjs')).filter((n) => n !== 'default');
writeFileSync('dist/index.mjs', `import tsns from './index.cjs';\nexport const { ${names.join(', ')} } = tsns;\nexport default tsns;\n`);
const tsc = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
process.exit(tsc.status ?? 1);
