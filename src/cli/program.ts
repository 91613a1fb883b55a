// The command line: global options, the commands, help with examples, and how each way of ending
// becomes an exit code. Commander parses; a command's action says its exit code through `end`.
import { Command, CommanderError, Option } from 'commander';
import { VERSION } from '../version.js';
import { parseServiceUrl } from './arguments.js';
import { registerFilesCommand } from './commands/files.js';
import { registerServeCommand } from './commands/serve.js';
import { registerSettingsCommand } from './commands/settings.js';
import { registerUploadCommands } from './commands/uploads.js';
import type { CliIo } from './context.js';
import { EXIT } from './exit-codes.js';
import { exitCodeOfCommander, toCliError } from './failures.js';
import type { OutputStream } from './output.js';

export const DEFAULT_URL = 'http://127.0.0.1:8000';

const EXAMPLES = `
Examples:
  $ s3-folder-uploader serve
  $ s3-folder-uploader add /data/run-42 s3://my-bucket/runs/42 --pattern '*.csv' --id run-42
  $ s3-folder-uploader status run-42 --wait
  $ s3-folder-uploader files run-42 --status failed
  $ s3-folder-uploader settings --max-upload-bytes-per-second 20MiB
  $ s3-folder-uploader ls --json | jq '.[].progress.phase'

Exit codes: 0 ok; 1 files failed (status --wait, verify); 2 usage error, or a request the service
refused (4xx but 404); 3 upload not found, or the service unreachable or failing (5xx).
Reference: docs/cli.md`;

export interface CliStreams extends CliIo {
  /** Where errors go, one line each. */
  err: OutputStream;
}

/** Parses `argv` (as process.argv: node, script, arguments...), runs the command, and resolves with the exit code. */
export async function runCli(argv: readonly string[], streams: CliStreams): Promise<number> {
  let exitCode: number = EXIT.ok;
  const end = (code: number): void => {
    exitCode = code;
  };
  const program = buildProgram(streams, end);
  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (error) {
    // Commander has already printed its own message (or the help, or the version).
    if (error instanceof CommanderError) return exitCodeOfCommander(error);
    const failure = toCliError(error);
    streams.err.write(`error: ${failure.message}\n`);
    return failure.exitCode;
  }
}

function buildProgram(streams: CliStreams, end: (code: number) => void): Command {
  const program = new Command('s3-folder-uploader')
    .description('Drive the s3-folder-uploader service through its HTTP API, or run it (serve).')
    .version(VERSION, '-V, --version')
    .addOption(
      new Option('--url <url>', 'where the service listens')
        .env('S3FU_URL')
        .default(new URL(DEFAULT_URL), DEFAULT_URL)
        .argParser(parseServiceUrl),
    )
    .addOption(new Option('--token <token>', 'the API token, when the service has one').env('API_TOKEN'))
    .configureOutput({
      writeOut: (text) => void streams.out.write(text),
      writeErr: (text) => streams.err.write(text),
    })
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', EXAMPLES)
    .exitOverride();

  registerServeCommand(program, end);
  registerUploadCommands(program, streams, end);
  registerFilesCommand(program, streams, end);
  registerSettingsCommand(program, streams, end);
  return program;
}
