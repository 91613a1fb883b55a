// `settings`: read the settings that change while the service runs (GET /settings), or change
// them (PATCH /settings): today the bandwidth limit.
import type { Command } from 'commander';
import { parseByteCount } from '../arguments.js';
import { clientOf, type CliIo } from '../context.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { settingsLines } from '../views.js';

export function registerSettingsCommand(
  program: Command,
  { out }: CliIo,
  end: (code: ExitCode) => void,
): void {
  program
    .command('settings')
    .description('Show or change the bandwidth limit')
    .option(
      '--max-upload-bytes-per-second <n>',
      'the bandwidth limit for all uploads together, e.g. 4194304 or 4MiB; 0 lifts it',
      parseByteCount,
    )
    .option('--json', 'print the API’s settings as JSON')
    .action(async (options: { maxUploadBytesPerSecond?: number; json?: boolean }, command: Command) => {
      const client = clientOf(command);
      const limit = options.maxUploadBytesPerSecond;
      const settings =
        limit === undefined
          ? await client.getSettings()
          : await client.updateSettings({ max_upload_bytes_per_second: limit });
      await (options.json ? out.json(settings) : out.lines(settingsLines(settings)));
      end(EXIT.ok);
    });
}
