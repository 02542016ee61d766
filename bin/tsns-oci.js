#!/usr/bin/env node
'use strict';
// tsns-oci: an OCI runtime with runc's command line. The only place that exits.
// Each call of an engine's is a process of its own: the bundle comes with its compiled code (cached-require.js).
require('./cached-require.js')
  .cachedRequire(require('node:path').join(__dirname, '..', 'dist', 'oci.cjs'))
  .ociMain(process.argv.slice(2))
  .then(
    (status) => process.exit(status.code),
    (err) => {
      process.stderr.write(`tsns: internal error: ${err && err.stack ? err.stack : err}\n`);
      process.exit(125);
    },
  );
