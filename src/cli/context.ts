// What every command gets: where to print, and the API client built from the global options.
import type { Command } from 'commander';
import { ApiClient } from './api-client.js';
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
