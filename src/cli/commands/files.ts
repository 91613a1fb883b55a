// `files <id>`: the files of an upload, a page at a time from the API, so that a listing of a
// million files never sits in memory. People see the failed files first, with their messages;
// --json keeps the API's order and shape ({items, next_cursor}).
import { Option, type Command } from 'commander';
import type { FileItem, ListFilesQuery } from '../../api/schemas.js';
import type { ApiClient } from '../api-client.js';
import { parsePositiveInteger } from '../arguments.js';
import { clientOf, type CliIo } from '../context.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import type { Output } from '../output.js';
import { FILE_HEADER, fileLines } from '../views.js';

const TASK_STATUS_CHOICES = ['pending', 'in_progress', 'completed', 'failed'] as const;
type TaskStatus = (typeof TASK_STATUS_CHOICES)[number];

/** The API's largest page. */
const MAX_PAGE = 1000;
const DEFAULT_LIMIT = 100;

interface FilesOptions {
  status?: TaskStatus;
  limit: number;
  all?: boolean;
  cursor?: string;
  json?: boolean;
}

interface Page {
  items: FileItem[];
  next_cursor: string | null;
}

export function registerFilesCommand(program: Command, { out }: CliIo, end: (code: ExitCode) => void): void {
  program
    .command('files')
    .description('List the files of an upload, failed ones first')
    .argument('<id>', 'the upload id')
    .addOption(new Option('--status <status>', 'only the files in this status').choices(TASK_STATUS_CHOICES))
    .option('--limit <n>', 'list at most n files', parsePositiveInteger, DEFAULT_LIMIT)
    .option('--all', 'list every file (no limit)')
    .option('--cursor <cursor>', 'start after the page that gave this next_cursor (with --json)')
    .option('--json', 'print {items, next_cursor} as the API does, in its order')
    .action(async (id: string, options: FilesOptions, command: Command) => {
      const client = clientOf(command);
      const limit = options.all ? Infinity : options.limit;
      if (options.json) await printJson(out, pages(client, id, options.status, limit, options.cursor));
      else await printHuman(out, client, id, options.status, limit, options.cursor);
      end(EXIT.ok);
    });
}

/**
 * The API's pages, up to `limit` files, sized so that the last one ends exactly there and its
 * cursor continues from there; no page is larger than `pageSize`.
 */
async function* pages(
  client: ApiClient,
  uploadId: string,
  status: TaskStatus | undefined,
  limit: number,
  cursor: string | undefined,
  pageSize = MAX_PAGE,
): AsyncGenerator<Page> {
  let left = limit;
  let next = cursor;
  do {
    const query: ListFilesQuery = {
      limit: Math.min(left, pageSize, MAX_PAGE),
      ...(status ? { status } : {}),
    };
    const page = await client.listFiles(uploadId, next === undefined ? query : { ...query, cursor: next });
    yield page;
    left -= page.items.length;
    next = page.next_cursor ?? undefined;
  } while (next !== undefined && left > 0);
}

/** One document, written a page at a time: {"items": [...], "next_cursor": ...}. */
async function printJson(out: Output, source: AsyncGenerator<Page>): Promise<void> {
  let first = true;
  let cursor: string | null = null;
  await out.write('{\n  "items": [');
  for await (const page of source) {
    for (const item of page.items) {
      await out.write(`${first ? '\n' : ',\n'}${indent(JSON.stringify(item, null, 2), 4)}`);
      first = false;
    }
    cursor = page.next_cursor;
  }
  await out.write(`${first ? '' : '\n  '}],\n  "next_cursor": ${JSON.stringify(cursor)}\n}\n`);
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((line) => pad + line)
    .join('\n');
}

/** Without --status: the failed files first, then the others (failed ones skipped the second time). */
async function printHuman(
  out: Output,
  client: ApiClient,
  uploadId: string,
  status: TaskStatus | undefined,
  limit: number,
  cursor: string | undefined,
): Promise<void> {
  let shown = 0;
  let more = false;
  const passes: { status: TaskStatus | undefined; skipFailed: boolean }[] =
    status !== undefined || cursor !== undefined
      ? [{ status, skipFailed: false }]
      : [
          { status: 'failed', skipFailed: false },
          { status: undefined, skipFailed: true },
        ];
  await out.lines([FILE_HEADER]);
  for (const pass of passes) {
    // One more than the limit, to tell whether there are more.
    for await (const page of pages(client, uploadId, pass.status, Infinity, cursor, limit + 1)) {
      for (const file of page.items) {
        if (pass.skipFailed && file.status === 'failed') continue;
        if (shown === limit) {
          more = true;
          break;
        }
        await out.lines(fileLines(file));
        shown++;
      }
      if (more) break;
    }
    if (more) break;
  }
  if (shown === 0) await out.lines([status === undefined ? '(no files yet)' : `(no ${status} files)`]);
  if (more) await out.lines([`… more files: --limit <n> to show more, or --all`]);
}
