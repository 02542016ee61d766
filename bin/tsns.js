#!/usr/bin/env node
'use strict';
// The only place that exits: the CLI says how to end, this carries it out.
const bootstrap = process.uptime() * 1e3;
const cli = require('../dist/cli.cjs');
// Measured before the first trace line: creating process.stderr costs milliseconds of its own.
const load = process.uptime() * 1e3 - bootstrap;
cli.trace('bootstrap', bootstrap);
cli.trace('load', load);

cli.main(process.argv.slice(2)).then(
  (status) => {
    if (status.signal !== null) cli.die(status.signal);
    process.exit(status.code);
  },
  (err) => {
    process.stderr.write(`tsns: internal error: ${err && err.stack ? err.stack : err}\n`);
    process.exit(125);
  },
);
