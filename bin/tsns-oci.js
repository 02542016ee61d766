#!/usr/bin/env node
'use strict';
// tsns-oci: an OCI runtime with runc's command line. The only place that exits.
require('../dist/oci.cjs')
  .ociMain(process.argv.slice(2))
  .then(
    (status) => process.exit(status.code),
    (err) => {
      process.stderr.write(`tsns: internal error: ${err && err.stack ? err.stack : err}\n`);
      process.exit(125);
    },
  );
