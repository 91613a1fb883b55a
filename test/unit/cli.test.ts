// The CLI's pure parts: its arguments, its numbers, its exit codes, its plain progress lines, and
// the rule that it is a client of the HTTP API only. The commands against a real service are in
// test/e2e/cli.test.ts.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { UploadDetailsReply } from '../../src/api/schemas.js';
import { parseByteCount, parseS3Destination, parseServiceUrl } from '../../src/cli/arguments.js';
import { SERVICE_ENTRY, SERVICE_NODE_FLAGS } from '../../src/cli/commands/serve.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { exitCodeOfStatus, toCliError } from '../../src/cli/failures.js';
import { ApiRequestError, ServiceUnreachableError } from '../../src/cli/api-client.js';
import { formatBytes, formatBytesOf, formatEta, formatPercent, formatRate } from '../../src/cli/format.js';
import { Output } from '../../src/cli/output.js';
import { runCli } from '../../src/cli/program.js';
import { PLAIN_LINE_INTERVAL_MS, progressDisplay } from '../../src/cli/progress-display.js';
import { startNodeFlags } from '../support/service-process.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cliRoot = path.join(repoRoot, 'src/cli');

describe('CLI arguments', () => {
  it('reads s3://bucket[/prefix] byte for byte', () => {
    assert.deepEqual(parseS3Destination('s3://my-bucket'), { bucket: 'my-bucket', prefix: '' });
    assert.deepEqual(parseS3Destination('s3://my-bucket/'), { bucket: 'my-bucket', prefix: '' });
    assert.deepEqual(parseS3Destination('s3://b/runs/42'), { bucket: 'b', prefix: 'runs/42' });
    assert.deepEqual(parseS3Destination('s3://b/runs/42/'), { bucket: 'b', prefix: 'runs/42/' });
    // Nothing is decoded or lowercased: the service judges the bucket name, keys are kept as written.
    assert.deepEqual(parseS3Destination('S3://Bucket/a%20b c'), { bucket: 'Bucket', prefix: 'a%20b c' });
    for (const bad of ['my-bucket', 's3:/b', 's3://', 's3:///prefix', 'https://b/p', '']) {
      assert.throws(() => parseS3Destination(bad), { code: 'commander.invalidArgument' }, bad);
    }
  });

  it('takes an http(s) URL for the service and nothing else', () => {
    assert.equal(parseServiceUrl('http://127.0.0.1:8000').href, 'http://127.0.0.1:8000/');
    assert.equal(parseServiceUrl('https://host/uploader/').href, 'https://host/uploader/');
    for (const bad of ['127.0.0.1:8000', 'ftp://host', 'http://host/?a=1', 'not a url']) {
      assert.throws(() => parseServiceUrl(bad), { code: 'commander.invalidArgument' }, bad);
    }
  });

  it('reads a bandwidth limit in bytes, KiB, MiB or GiB', () => {
    assert.equal(parseByteCount('0'), 0);
    assert.equal(parseByteCount('4194304'), 4194304);
    assert.equal(parseByteCount('512KiB'), 512 * 1024);
    assert.equal(parseByteCount('4 mib'), 4 * 1024 * 1024);
    assert.equal(parseByteCount('1GiB'), 1024 ** 3);
    for (const bad of ['-1', '1.5', '4MB', '4M', 'fast', '', '99999999999GiB']) {
      assert.throws(() => parseByteCount(bad), { code: 'commander.invalidArgument' }, bad);
    }
  });
});

describe('CLI numbers', () => {
  it('writes bytes in binary units, a pair in the unit of the larger', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1536), '1.50 KiB');
    assert.equal(formatBytes(12 * 1024 * 1024), '12.0 MiB');
    assert.equal(formatBytesOf(3, 5), '3/5 B');
    assert.equal(formatBytesOf(600 * 1024, 2.5 * 1024 * 1024), '0.59/2.50 MiB');
    assert.equal(formatBytesOf(12 * 1024 ** 2, 26.5 * 1024 ** 2), '12.0/26.5 MiB');
  });

  it('writes the rate in MiB/s, the ETA in units people read, and percents rounded down', () => {
    assert.equal(formatRate(0), '0.00 MiB/s');
    assert.equal(formatRate(52428800), '50.0 MiB/s');
    assert.equal(formatEta(null), '--');
    assert.equal(formatEta(42), '42s');
    assert.equal(formatEta(185), '3m05s');
    assert.equal(formatEta(7380), '2h03m');
    assert.equal(formatEta(3 * 86_400 + 7200), '3d02h');
    assert.equal(formatPercent(999, 1000), '99%');
    assert.equal(formatPercent(1000, 1000), '100%');
    assert.equal(formatPercent(0, 0), '0%');
  });
});

describe('CLI exit codes', () => {
  it('maps HTTP answers: 404 and 5xx to 3, every other 4xx to 2', () => {
    assert.equal(exitCodeOfStatus(404), EXIT.unavailable);
    assert.equal(exitCodeOfStatus(503), EXIT.unavailable);
    assert.equal(exitCodeOfStatus(500), EXIT.unavailable);
    for (const status of [400, 401, 403, 409, 413, 415]) assert.equal(exitCodeOfStatus(status), EXIT.usage);
  });

  it('says what the API said, once, with its code, and adds the flag that helps', () => {
    const validation = toCliError(
      new ApiRequestError(400, 'validation_error', 'Invalid request body: upload_id must be short.', [
        { field: 'upload_id', message: 'must be short' },
      ]),
    );
    assert.equal(
      validation.message,
      'Invalid request body: upload_id must be short (validation_error, HTTP 400)',
    );
    assert.equal(validation.exitCode, EXIT.usage);
    const unauthorized = toCliError(new ApiRequestError(401, 'unauthorized', 'The API token is missing.'));
    assert.match(unauthorized.message, /--token or the API_TOKEN environment variable/);
    assert.equal(unauthorized.exitCode, EXIT.usage);
    assert.equal(toCliError(new ServiceUnreachableError('cannot reach')).exitCode, EXIT.unavailable);
  });

  it('ends a usage error with 2 and help or the version with 0, without contacting anything', async () => {
    const run = async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
      const out = new PassThrough();
      const err = new PassThrough();
      let outText = '';
      let errText = '';
      out.on('data', (chunk: Buffer) => (outText += chunk.toString()));
      err.on('data', (chunk: Buffer) => (errText += chunk.toString()));
      const code = await runCli(['node', 's3-folder-uploader', ...args], { out: new Output(out), err });
      return { code, out: outText, err: errText };
    };
    assert.equal((await run('--help')).code, EXIT.ok);
    assert.match((await run('status', '--help')).out, /--wait/);
    assert.equal((await run('--version')).code, EXIT.ok);
    for (const args of [
      [],
      ['nonsense'],
      ['status'],
      ['ls', '--bogus'],
      ['add', '/tmp', 'not-s3'],
      ['files', 'x', '--status', 'done'],
      ['files', 'x', '--limit', '0'],
      ['ls', '--url', 'ftp://host'],
      ['status', 'x', '--wait', '--interval', '0'],
      ['settings', '--max-upload-bytes-per-second', '-5'],
    ]) {
      const result = await run(...args);
      assert.equal(result.code, EXIT.usage, `${args.join(' ')}: ${result.err}`);
      assert.notEqual(result.err, '', `${args.join(' ')} says why on stderr`);
    }
  });
});

describe('CLI progress without a terminal', () => {
  function upload(phase: string, uploaded: number, total: number): UploadDetailsReply {
    return {
      upload_id: 'run-42',
      progress: { phase, bytes_per_second: 1048576, eta_seconds: 3, last_completed_at: null },
      files: { pending: 1, in_progress: 0, completed: 1, failed: 0, total: 2 },
      bytes: { uploaded, total },
      last_scan: null,
    } as unknown as UploadDetailsReply;
  }

  it('prints a line when the phase changes, otherwise one every few seconds, and the last state at the end', () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
    let now = 0;
    const display = progressDisplay(new Output(stream), () => now);
    display.show(upload('uploading', 0, 100));
    now += 1000;
    display.show(upload('uploading', 10, 100));
    display.show(upload('uploading', 20, 100));
    now += PLAIN_LINE_INTERVAL_MS;
    display.show(upload('uploading', 30, 100));
    now += 1000;
    display.show(upload('uploading', 40, 100));
    display.stop();
    assert.deepEqual(
      lines.map((line) => /(\d+)%/.exec(line)?.[1]),
      ['0', '30', '40'],
    );
    assert.equal(lines[0], 'run-42 uploading 0% 0/100 B 1.00 MiB/s ETA 3s files 1/2');
  });
});

describe('CLI boundaries', () => {
  it('starts the service with the Node flags of package.json start script, from dist/main.js', () => {
    assert.deepEqual([...SERVICE_NODE_FLAGS], startNodeFlags());
    // Compiled, serve.js sits in dist/cli/commands/, two folders below dist/main.js.
    assert.equal(SERVICE_ENTRY, path.join(repoRoot, 'src/main.js'));
  });

  it('is a client of the HTTP API only: it loads nothing of the service but its version', () => {
    const files = readdirSync(cliRoot, { recursive: true, encoding: 'utf8' }).filter((file) =>
      file.endsWith('.ts'),
    );
    assert.ok(files.length > 5);
    for (const file of files) {
      const source = readFileSync(path.join(cliRoot, file), 'utf8');
      for (const match of source.matchAll(/^import (type )?[^;]*? from '([^']+)';/gms)) {
        const [, typeOnly, specifier] = match as unknown as [string, string | undefined, string];
        if (typeOnly || !specifier.startsWith('.')) continue;
        const target = path.relative(
          cliRoot,
          path.resolve(path.dirname(path.join(cliRoot, file)), specifier),
        );
        assert.ok(
          !target.startsWith('..') || target === path.join('..', 'version.js'),
          `${file} imports ${specifier} at run time`,
        );
      }
    }
  });
});
