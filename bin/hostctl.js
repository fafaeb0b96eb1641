#!/usr/bin/env node
// The CLI is compiled (dist/) so start-up stays small; only playbooks go through a TS loader.
import('../dist/cli/main.js').then((m) => m.main(process.argv.slice(2)));
