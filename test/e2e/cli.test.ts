// The CLI as people and scripts run it: `bin/s3-folder-uploader.js` (the compiled CLI, from `npm
// run build`) as a child process, against the real service and the real S3 server. Its exit codes,
// its --json output, `status --wait` to the end, its progress bar in a pseudo-terminal (util-linux
// `script`), and `serve`.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, listKeys, testS3, testS3Client } from '../support/s3.js';
import { killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../support/temp-tree.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(repoRoot, 'bin/s3-folder-uploader.js');
const KiB = 1024;
const ESC = '\u001b';
/** What splits a terminal's output into the bar's frames: line ends, cursor moves and clears. */
const TERMINAL_CONTROLS = new RegExp(`\\r|\\n|${ESC}\\[[0-9;?]*[A-Za-z]|${ESC}[78]`);

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

let s3: S3Client;
let work: string;
let service: ServiceProcess;
let bucket: string;

before(async () => {
  if (!existsSync(path.join(repoRoot, 'dist/cli/main.js'))) {
    throw new Error('dist/cli/main.js is missing: run `npm run build` before these tests');
  }
  s3 = testS3Client();
  work = await makeTempDir('e2e-cli');
  bucket = await createTestBucket(s3, 'cli');
  service = await startService({
    databaseFile: path.join(work, 'cli.db'),
    built: true,
    // One file at a time, so that files complete one after the other and the bar moves in steps.
    env: { MAX_CONCURRENT_FILES: '1' },
  });
});

after(async () => {
  assert.equal(await service.stop(), 0);
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
  await deleteBucket(s3, bucket);
  await removeTempDir(work);
  s3.destroy();
});

/** Runs the CLI with only the environment given (no API_TOKEN leaks in from the test run). */
function cli(args: readonly string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<CliRun> {
  return runProcess(process.execPath, [BIN, ...args], env, timeoutMs);
}

function runProcess(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs: number,
): Promise<CliRun> {
  return startProcess(command, args, env, timeoutMs).done;
}

interface RunningProcess {
  /** What it printed so far. */
  output(): CliRun;
  done: Promise<CliRun>;
}

function startProcess(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs: number,
): RunningProcess {
  const child = spawn(command, args, {
    cwd: work,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    // stdin stays open: `script` copies it to the terminal it makes.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CliRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} still running after ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { output: () => ({ code: child.exitCode, stdout, stderr }), done };
}

function at(target: Pick<ServiceProcess, 'baseUrl'> = service): string[] {
  return ['--url', target.baseUrl];
}

async function folderOf(label: string, files: Record<string, number>): Promise<string> {
  const folder = path.join(work, label);
  for (const [name, bytes] of Object.entries(files)) await writeRandomFile(path.join(folder, name), bytes);
  return folder;
}

/** A port nothing listens on: taken from the system, then given back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the CLI against a running service', () => {
  it('adds an upload, lists it, waits for it (exit 0), prints JSON that parses; a cancelled one exits 1', async () => {
    const folder = await folderOf('plain', { 'a.csv': 2 * KiB, 'sub/b.csv': 3 * KiB, 'skip.txt': 1 * KiB });

    const added = await cli([
      ...at(),
      'add',
      folder,
      `s3://${bucket}/plain`,
      '--pattern',
      '*.csv',
      '--id',
      'plain',
    ]);
    assert.equal(added.code, 0, added.stderr);
    assert.match(
      added.stdout,
      new RegExp(`^created upload plain: ${folder} \\(\\*\\.csv\\) → s3://${bucket}/plain$`, 'm'),
    );

    const listed = await cli([...at(), 'ls']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^UPLOAD ID +PHASE +FILES/);
    assert.match(listed.stdout, new RegExp(`^plain +\\w+ .* s3://${bucket}/plain$`, 'm'));

    // Not a terminal: plain lines, then the verdict.
    const waited = await cli([...at(), 'status', 'plain', '--wait', '--interval', '0.2']);
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stdout, /^plain idle 100% 5\.00\/5\.00 KiB [\d.]+ MiB\/s ETA -- files 2\/2$/m);
    assert.match(waited.stdout, /^plain is up to date: 2 files in S3$/m);
    assert.ok(!waited.stdout.includes(ESC), 'no terminal escapes in a pipe');
    assert.deepEqual(await listKeys(s3, bucket, 'plain/'), ['plain/a.csv', 'plain/sub/b.csv']);

    const list = JSON.parse((await cli([...at(), 'ls', '--json'])).stdout) as {
      upload_id: string;
      progress: { phase: string };
    }[];
    assert.equal(list.find((upload) => upload.upload_id === 'plain')?.progress.phase, 'idle');
    const details = JSON.parse((await cli([...at(), 'status', 'plain', '--json'])).stdout) as {
      files: { completed: number; total: number };
    };
    assert.deepEqual([details.files.completed, details.files.total], [2, 2]);
    const files = JSON.parse((await cli([...at(), 'files', 'plain', '--json', '--limit', '1'])).stdout) as {
      items: { relative_path: string }[];
      next_cursor: string | null;
    };
    assert.equal(files.items.length, 1);
    assert.notEqual(files.next_cursor, null, 'a cursor to the second file');
    const rest = JSON.parse(
      (await cli([...at(), 'files', 'plain', '--json', '--cursor', files.next_cursor!])).stdout,
    ) as { items: { relative_path: string }[]; next_cursor: string | null };
    assert.deepEqual([...files.items, ...rest.items].map((file) => file.relative_path).sort(), [
      'a.csv',
      'sub/b.csv',
    ]);
    assert.equal(rest.next_cursor, null);
    const verified = await cli([...at(), 'verify', 'plain', '--json']);
    assert.equal(verified.code, 0, verified.stderr);
    assert.equal((JSON.parse(verified.stdout) as { checked: number }).checked, 2);

    assert.equal((await cli([...at(), 'cancel', 'plain'])).code, 0);
    const cancelled = await cli([...at(), 'status', 'plain', '--wait']);
    assert.equal(cancelled.code, 1);
    assert.match(cancelled.stdout, /^plain was cancelled: 2 of 2 files in S3$/m);
  });

  it('add --no-watch makes a one-shot upload: status --wait exits 0 once it is completed, ls shows it', async () => {
    const folder = await folderOf('once', { 'a.csv': 2 * KiB, 'sub/b.csv': 1 * KiB });
    const added = await cli([
      ...at(),
      'add',
      folder,
      `s3://${bucket}/once`,
      '--id',
      'once',
      '--no-watch',
      '--json',
    ]);
    assert.equal(added.code, 0, added.stderr);
    assert.equal((JSON.parse(added.stdout) as { watch: boolean }).watch, false);

    const waited = await cli([...at(), 'status', 'once', '--wait', '--interval', '0.2']);
    assert.equal(waited.code, 0, waited.stderr);
    assert.match(waited.stdout, /^once is completed: 2 files in S3$/m);
    assert.deepEqual(await listKeys(s3, bucket, 'once/'), ['once/a.csv', 'once/sub/b.csv']);

    const listed = await cli([...at(), 'ls']);
    assert.match(listed.stdout, /^once +completed +2\/2 /m);
    const completed = await cli([...at(), 'ls', '--status', 'completed', '--json']);
    const ids = (JSON.parse(completed.stdout) as { upload_id: string }[]).map((upload) => upload.upload_id);
    assert.deepEqual(ids, ['once']);
    const shown = await cli([...at(), 'status', 'once']);
    assert.match(shown.stdout, /^once {2}completed {2}\(status completed\)$/m);
    assert.match(shown.stdout, /\(once, not watched\)/);
  });

  it('add takes a completion marker and a manifest; status shows the arrival', async () => {
    const folder = await folderOf('marked', { 'Data/a.bcl': 100, 'Data/b.bcl': 200, 'RTAComplete.txt': 5 });
    const added = await cli([
      ...at(),
      'add',
      folder,
      `s3://${bucket}/marked`,
      '--id',
      'marked',
      '--no-watch',
      '--complete-marker',
      'RTAComplete.txt',
      '--complete-marker',
      'CopyComplete.txt',
      '--manifest',
      '--json',
    ]);
    assert.equal(added.code, 0, added.stderr);
    const created = JSON.parse(added.stdout) as { complete_markers: string[]; manifest_key: string };
    assert.deepEqual(created.complete_markers, ['RTAComplete.txt', 'CopyComplete.txt']);
    assert.equal(created.manifest_key, 'marked/_manifest.json');
    const waited = await cli([...at(), 'status', 'marked', '--wait', '--interval', '0.2']);
    assert.equal(waited.code, 0, waited.stderr);
    const shown = await cli([...at(), 'status', 'marked']);
    assert.match(shown.stdout, /^ {2}markers +RTAComplete\.txt, CopyComplete\.txt$/m);
    assert.match(
      shown.stdout,
      /^ {2}arrived +\S+ {2}marker marked\/RTAComplete\.txt, after 2 files \(300 B\)$/m,
    );
    assert.match(
      shown.stdout,
      /^ {2}manifest +marked\/_manifest\.json {2}2 files, written \S+, sha256 [0-9a-f]{64}$/m,
    );
    assert.deepEqual(await listKeys(s3, bucket, 'marked/'), [
      'marked/Data/a.bcl',
      'marked/Data/b.bcl',
      'marked/RTAComplete.txt',
      'marked/_manifest.json',
    ]);
    const bad = await cli([...at(), 'add', folder, `s3://${bucket}/marked2`, '--complete-marker', 'x/']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /\(invalid_complete_markers, HTTP 400\)\n$/);
  });

  it('add takes the object properties: --storage-class, --sse, --sse-kms-key-id, --metadata and --tag', async () => {
    // An empty folder: nothing is written, so the test server's refusal of encryption and tags
    // (see test/e2e/object-properties.test.ts) does not matter here.
    const folder = path.join(work, 'props');
    await mkdir(folder, { recursive: true });
    const properties = [
      '--storage-class',
      'GLACIER_IR',
      '--sse',
      'aws:kms',
      '--sse-kms-key-id',
      'alias/lab',
      '--metadata',
      'project=genomics',
      '--metadata',
      'note=a=b',
      '--tag',
      'lab=sequencing',
    ];
    const added = await cli([
      ...at(),
      'add',
      folder,
      `s3://${bucket}/props`,
      '--id',
      'props',
      ...properties,
      '--json',
    ]);
    assert.equal(added.code, 0, added.stderr);
    assert.deepEqual((JSON.parse(added.stdout) as { object_properties: unknown }).object_properties, {
      storage_class: 'GLACIER_IR',
      sse: 'aws:kms',
      sse_kms_key_id: 'alias/lab',
      metadata: { project: 'genomics', note: 'a=b' },
      tags: { lab: 'sequencing' },
    });
    const shown = await cli([...at(), 'status', 'props']);
    assert.match(shown.stdout, /^ {2}storage class +GLACIER_IR$/m);
    assert.match(shown.stdout, /^ {2}encryption +aws:kms \(key alias\/lab\)$/m);
    assert.match(shown.stdout, /^ {2}metadata +project=genomics, note=a=b$/m);
    assert.match(shown.stdout, /^ {2}tags +lab=sequencing$/m);
    assert.equal((await cli([...at(), 'cancel', 'props'])).code, 0);

    for (const bad of [
      ['--metadata', 'novalue'],
      ['--tag', 'a=1', '--tag', 'a=2'],
    ]) {
      const usage = await cli([...at(), 'add', folder, `s3://${bucket}/props2`, ...bad]);
      assert.equal(usage.code, 2, `${bad.join(' ')}: ${usage.stderr}`);
    }
    const reserved = await cli([...at(), 'add', folder, `s3://${bucket}/props2`, '--metadata', 'sha256=x']);
    assert.equal(reserved.code, 2);
    assert.match(reserved.stderr, /object_properties\.metadata\.sha256: .*reserved/);
    assert.match(reserved.stderr, /\(invalid_object_properties, HTTP 400\)\n$/);
  });

  it('status --wait exits 1 when a file fails, and prints its message', async () => {
    // A path whose key would pass S3's 1024 bytes: the service fails it at once, for good.
    const deep = Array.from({ length: 5 }, (_, level) => `${level}`.repeat(220)).join('/');
    const folder = await folderOf('failing', { 'ok.txt': 10, [`${deep}/long.txt`]: 10 });
    assert.equal((await cli([...at(), 'add', folder, `s3://${bucket}/failing`, '--id', 'failing'])).code, 0);

    const waited = await cli([...at(), 'status', 'failing', '--wait', '--interval', '0.2']);
    assert.equal(waited.code, 1, waited.stderr);
    assert.match(waited.stdout, /^failing failed .* files 1\/2 \(1 failed\)$/m);
    assert.match(waited.stdout, /^failed files \(1\):$/m);
    assert.match(waited.stdout, /^ {4}the object key is \d+ bytes of UTF-8; S3 allows at most 1024/m);

    const failed = await cli([...at(), 'files', 'failing', '--status', 'failed', '--json']);
    assert.equal((JSON.parse(failed.stdout) as { items: unknown[] }).items.length, 1);
    // People see the failed file first, with its message under it.
    const human = (await cli([...at(), 'files', 'failing'])).stdout.split('\n');
    assert.match(human[1] ?? '', /^failed /);
    assert.match(human[2] ?? '', /^ +the object key is/);
    assert.match(human[3] ?? '', /^completed +10 B +ok\.txt$/);
  });

  it('exits 3 for an unknown upload and for a URL nothing listens on, 2 for a usage error', async () => {
    const unknown = await cli([...at(), 'status', 'no-such-upload']);
    assert.equal(unknown.code, 3);
    assert.equal(unknown.stdout, '');
    assert.equal(
      unknown.stderr,
      "error: No upload has upload_id 'no-such-upload' (upload_not_found, HTTP 404)\n",
    );

    const nobody = `http://127.0.0.1:${await closedPort()}`;
    const refused = await cli(['ls', '--url', nobody]);
    assert.equal(refused.code, 3);
    assert.match(
      refused.stderr,
      new RegExp(`^error: cannot reach the service at ${nobody}/: connection refused`),
    );
    assert.equal((await cli(['ls'], { S3FU_URL: nobody })).code, 3, 'S3FU_URL is the default --url');

    for (const args of [['add', work, 'my-bucket/prefix'], ['files', 'x', '--status', 'done'], ['lst']]) {
      const usage = await cli([...at(), ...args]);
      assert.equal(usage.code, 2, `${args.join(' ')}: ${usage.stderr}`);
      assert.match(usage.stderr, /^error: /, args.join(' '));
    }
    // The service refusing the arguments (a 400) is a usage error too.
    const badBucket = await cli([...at(), 'add', work, 's3://Not_A_Bucket']);
    assert.equal(badBucket.code, 2);
    assert.match(badBucket.stderr, /\(invalid_bucket_name, HTTP 400\)\n$/);
  });

  it('draws a live bar in a terminal: percent, MiB/s and ETA, and exits 0 when the upload is idle', async () => {
    // Ten small files, one at a time. The limit holds the first one back until the bar is on the
    // screen (however slowly the CLI starts), then lets the rest go at 256 KiB/s: about 2 s of frames.
    const sizes = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`f${i}.bin`, 48 * KiB]));
    const folder = await folderOf('bar', sizes);
    const limit = async (value: string): Promise<string> => {
      const set = await cli([...at(), 'settings', '--max-upload-bytes-per-second', value]);
      assert.equal(set.code, 0, set.stderr);
      return set.stdout;
    };
    await limit('8KiB');
    try {
      assert.equal((await cli([...at(), 'add', folder, `s3://${bucket}/bar`, '--id', 'bar'])).code, 0);
      const command = [process.execPath, BIN, ...at(), 'status', 'bar', '--wait', '--interval', '0.2'];
      const running = startProcess(
        'script',
        ['-qfec', command.map(shellQuote).join(' '), '/dev/null'],
        {},
        30_000,
      );
      const frames = (stdout: string): string[] =>
        stdout.split(TERMINAL_CONTROLS).filter((frame) => /^bar \w+ \|/.test(frame));
      await waitFor(() => frames(running.output().stdout).length > 0, {
        timeoutMs: 15_000,
        message: 'the bar is drawn',
      });
      assert.equal(
        await limit('256KiB'),
        'bandwidth limit: 0.25 MiB/s (262144 bytes per second, all uploads together)\n',
      );
      const terminal = await running.done;
      assert.equal(terminal.code, 0, terminal.stdout + terminal.stderr);
      const drawn = frames(terminal.stdout);
      const percents = new Set(drawn.map((frame) => /\| +(\d+)% \|/.exec(frame)?.[1]));
      assert.ok(percents.size >= 3, `the bar was drawn at several points: ${[...percents].join(', ')}`);
      assert.ok(
        drawn.some((frame) => /[\d.]+ MiB\/s \| ETA \d+[smhd]/.test(frame)),
        drawn.join('\n'),
      );
      assert.match(drawn.at(-1) ?? '', /^bar idle \|█+\| 100% \| 480\.0\/480\.0 KiB \| .* files 10\/10$/);
      assert.match(terminal.stdout, /bar is up to date: 10 files in S3/);
    } finally {
      assert.equal(await limit('0'), 'bandwidth limit: none\n');
    }
  });
});

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

describe('the CLI with a token', () => {
  it('sends API_TOKEN (or --token); without it the service says 401 and the CLI exits 2', async () => {
    const guarded = await startService({
      databaseFile: path.join(work, 'token.db'),
      built: true,
      env: { API_TOKEN: 'cli-secret-token' },
    });
    try {
      const refused = await cli([...at(guarded), 'ls']);
      assert.equal(refused.code, 2);
      assert.match(
        refused.stderr,
        /--token or the API_TOKEN environment variable \(unauthorized, HTTP 401\)\n$/,
      );
      assert.equal((await cli([...at(guarded), 'ls'], { API_TOKEN: 'cli-secret-token' })).code, 0);
      const byFlag = await cli([...at(guarded), 'settings', '--json', '--token', 'cli-secret-token']);
      assert.equal(byFlag.code, 0, byFlag.stderr);
    } finally {
      assert.equal(await guarded.stop(), 0);
    }
  });
});

describe('serve', () => {
  it('runs dist/main.js with the start script’s Node flags, and passes a SIGTERM on for a graceful stop', async () => {
    const s3Settings = testS3();
    const child = spawn(process.execPath, [BIN, 'serve'], {
      cwd: work,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        PORT: '0',
        DATABASE_URL: `sqlite:${path.join(work, 'serve.db')}`,
        AWS_ENDPOINT_URL_S3: s3Settings.endpoint,
        AWS_ACCESS_KEY_ID: s3Settings.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3Settings.secretAccessKey,
        AWS_REGION: s3Settings.region,
        S3_FORCE_PATH_STYLE: 'true',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const logs: { msg?: string; address?: string; pid?: number }[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        logs.push(JSON.parse(line) as (typeof logs)[number]);
      } catch {
        // not a log line
      }
    });
    let servicePid: number | undefined;
    try {
      const ready = await waitFor(() => logs.find((entry) => entry.msg === 'service ready'), {
        timeoutMs: 20_000,
        message: 'serve printed "service ready"',
      });
      servicePid = ready.pid;
      assert.ok(servicePid !== undefined && servicePid !== child.pid, 'the service runs in its own process');
      const commandLine = (await readFile(`/proc/${servicePid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
      assert.deepEqual(commandLine.slice(1), [
        '--heap-growing-percent=50',
        path.join(repoRoot, 'dist/main.js'),
      ]);
      assert.equal((await cli(['ls', '--url', ready.address!])).code, 0);

      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.ok(
        logs.some((entry) => entry.msg === 'stopped'),
        'the service stopped gracefully',
      );
      assert.ok(!logs.some((entry) => /second signal/.test(entry.msg ?? '')), 'it got the signal once');
      assert.equal(existsSync(`/proc/${servicePid}`), false, 'the service is gone');
    } finally {
      child.kill('SIGKILL');
      if (servicePid !== undefined && existsSync(`/proc/${servicePid}`)) process.kill(servicePid, 'SIGKILL');
    }
  });
});
