'use strict';
// Loads a bundle of dist/ with V8's code cache beside it (FILE.cache, made by
// scripts/build.mjs), so that a call of tsns-oci does not compile its bundle
// again each time. The cache starts with the build's stamp, the last line of
// the bundle: V8 checks only a source's length, so a cache from another build
// is never handed to it. A missing, stale or rejected cache (another Node)
// costs nothing but the compile it would have saved.
const { readFileSync } = require('node:fs');
const { createRequire, wrap } = require('node:module');
const { dirname } = require('node:path');
const { Script } = require('node:vm');

const STAMP = /\/\/ tsns-build ([0-9a-f]{64})\n?$/;

function stampOf(src) {
  const m = STAMP.exec(src.slice(-100));
  return m ? m[1] : null;
}

function cacheFor(file, stamp) {
  if (!stamp) return undefined;
  try {
    const buf = readFileSync(`${file}.cache`);
    return buf.subarray(0, 64).toString('latin1') === stamp ? buf.subarray(64) : undefined;
  } catch {
    return undefined;
  }
}

/** require(file), compiled with its code cache where it fits; `out.script` is the compiled script. */
function cachedRequire(file, out = {}) {
  const src = readFileSync(file, 'utf8');
  const cachedData = cacheFor(file, stampOf(src));
  const script = new Script(wrap(src), { filename: file, cachedData });
  const mod = { exports: {}, id: file, filename: file, loaded: false };
  script.runInThisContext().call(mod.exports, mod.exports, createRequire(file), mod, file, dirname(file));
  mod.loaded = true;
  out.script = script;
  out.rejected = cachedData !== undefined && script.cachedDataRejected === true;
  out.used = cachedData !== undefined && !out.rejected;
  return mod.exports;
}

module.exports = { cachedRequire, stampOf };
