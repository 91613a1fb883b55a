#!/usr/bin/env node
// The command installed by the package (package.json "bin"): runs the compiled CLI, or says how
// to build it when it is missing.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write(
    'error: the CLI is not built yet: run `npm run build` in the s3-folder-uploader folder\n',
  );
  process.exit(2);
}
await import(cli.href);
