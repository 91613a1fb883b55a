// What every command gets: the API client built from the global options, where to print, and how
// to say which exit code the command ends with.
import type { Command } from 'commander';
import { ApiClient } from './api-client.js';
import type { ExitCode } from './exit-codes.js';
import type { Output } from './output.js';

export interface CliIo {
  out: Output;
}

/** The options every command takes (program-level, so they may come before or after the command). */
export interface GlobalOptions {
  url: URL;
  token?: string;
}

export function clientOf(command: Command): ApiClient {
  const { url, token } = command.optsWithGlobals<GlobalOptions>();
  return new ApiClient({ baseUrl: url, token: token === '' ? undefined : token });
}

/** A command's action: does its work and says how the process should end. */
export type Action<Args extends unknown[]> = (...args: Args) => Promise<ExitCode>;
