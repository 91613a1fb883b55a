// `serve`: the service in the foreground, as `npm start` runs it: `node <flags> dist/main.js`, in
// a child process, because the flags are Node's own (read when Node starts, not settable later).
// The child reads its settings from the environment and from a .env file in the current folder.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CliError, EXIT } from '../exit-codes.js';

/** The Node flags of package.json's start script; test/unit/cli-arguments.test.ts keeps them the same. */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--heap-growing-percent=50'];

/** The compiled service, next to the compiled CLI: dist/cli/commands/serve.js → dist/main.js. */
export const SERVICE_ENTRY = fileURLToPath(new URL('../../main.js', import.meta.url));

const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export function registerServeCommand(program: Command, end: (code: number) => void): void {
  program
    .command('serve')
    .description('Run the service in the foreground, as npm start does')
    .action(async () => end(await serve()));
}

/**
 * Runs the service until it exits, and ends with its exit code (or 128 + the signal's number when
 * a signal killed it, as shells do). The child has its own process group, so that a Ctrl-C in the
 * terminal reaches this process alone, which passes it on once: the service stops gracefully on
 * the first SIGINT or SIGTERM and at once on a second, so it must not get each one twice. A SIGHUP
 * (the terminal closed) is passed on as SIGTERM, for the same graceful stop.
 */
function serve(): Promise<number> {
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, SERVICE_ENTRY], {
    stdio: 'inherit',
    detached: true,
  });
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal === 'SIGHUP' ? 'SIGTERM' : signal);
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
  return new Promise((resolve, reject) => {
    child.once('error', (error) => {
      reject(new CliError(`cannot start the service (${SERVICE_ENTRY}): ${error.message}`, EXIT.unavailable));
    });
    child.once('exit', (code, signal) => {
      for (const name of FORWARDED_SIGNALS) process.removeListener(name, forward);
      resolve(code ?? 128 + (signal === null ? 0 : constants.signals[signal]));
    });
  });
}
