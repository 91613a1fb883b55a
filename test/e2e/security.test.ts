// Security as a user meets it: the service process started with an API token and allowed source
// roots, called over HTTP with and without the token; and the start-ups it refuses.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { S3Client } from '@aws-sdk/client-s3';
import { waitFor } from '../support/poll.js';
import { createTestBucket, deleteBucket, listKeys, testS3, testS3Client } from '../support/s3.js';
import { killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TOKEN = 'e2e-5ecur1ty-t0ken-' + 'a1b2c3d4e5f6a7b8';
const EX_CONFIG = 78;

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: Record<string, unknown>;
}

/** Every answer the test received, to check that none carries a secret. */
const answers: string[] = [];

async function call(
  service: ServiceProcess,
  method: string,
  route: string,
  options: { token?: string; body?: unknown } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${service.baseUrl}${route}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  answers.push(`${[...response.headers].join(' ')}\n${text}`);
  const json = response.headers.get('content-type')?.startsWith('application/json')
    ? (JSON.parse(text) as Record<string, unknown>)
    : {};
  return { status: response.status, headers: response.headers, text, json };
}

/** Runs the service with a configuration it must refuse; resolves with its exit code and output. */
async function refusedStart(
  work: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const s3 = testS3();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src/main.ts')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: '0',
      DATABASE_URL: `sqlite:${path.join(work, 'refused.db')}`,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: s3.region,
      AWS_EC2_METADATA_DISABLED: 'true',
      ...env,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (exit) => resolve(exit)));
  clearTimeout(timer);
  return { code, stderr, stdout };
}

describe('security', () => {
  let s3: S3Client;
  let work: string;
  let bucket: string;

  before(async () => {
    s3 = testS3Client();
    work = await makeTempDir('e2e-security');
    bucket = await createTestBucket(s3, 'security');
  });

  afterEach(async () => {
    assert.equal(await killAllServices(), 0, 'a service was left running');
  });

  after(async () => {
    await deleteBucket(s3, bucket);
    await removeTempDir(work);
    s3.destroy();
  });

  it('with API_TOKEN and ALLOWED_SOURCE_ROOTS: open health and docs, 401 without the token, 403 outside the roots, links never followed', async () => {
    const allowed = path.join(work, 'allowed');
    const outside = path.join(work, 'outside');
    const source = path.join(allowed, 'source');
    await mkdir(source, { recursive: true });
    await mkdir(outside);
    await writeFile(path.join(outside, 'secret.txt'), 'outside the roots');
    await writeFile(path.join(source, 'kept.txt'), 'inside');
    await symlink(path.join(outside, 'secret.txt'), path.join(source, 'link.txt'));
    await symlink(outside, path.join(source, 'linked-folder'));
    await symlink(outside, path.join(allowed, 'way-out'));

    const service = await startService({
      databaseFile: path.join(work, 'db', 'uploads.db'),
      env: { API_TOKEN: TOKEN, ALLOWED_SOURCE_ROOTS: allowed },
    });
    const ready = service.logs.find((entry) => entry.msg === 'service ready');
    assert.equal(ready?.authentication, 'bearer token');

    // Open to all.
    assert.equal((await call(service, 'GET', '/')).status, 200);
    const document = await call(service, 'GET', '/openapi.json');
    assert.equal(document.status, 200);
    assert.ok((document.json.components as { securitySchemes?: object }).securitySchemes);
    assert.equal((await call(service, 'GET', '/docs')).status, 200);

    // Refused without the token, or with a wrong one.
    const anonymous = await call(service, 'GET', '/uploads');
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer realm="s3-folder-uploader"');
    assert.equal(anonymous.json.error, 'unauthorized');
    const wrong = await call(service, 'POST', '/uploads', {
      token: `${TOKEN}x`,
      body: { source_folder: source, destination_bucket: bucket },
    });
    assert.equal(wrong.status, 401);
    assert.match(wrong.headers.get('www-authenticate') ?? '', /error="invalid_token"/);

    // With the token: the roots and the prefix rules.
    assert.equal((await call(service, 'GET', '/uploads', { token: TOKEN })).status, 200);
    for (const folder of [outside, path.join(allowed, 'way-out'), `${allowed}/../outside`]) {
      const refused = await call(service, 'POST', '/uploads', {
        token: TOKEN,
        body: { source_folder: folder, destination_bucket: bucket },
      });
      assert.equal(refused.status, 403, refused.text);
      assert.equal(refused.json.error, 'source_folder_not_allowed');
    }
    const smuggled = await call(service, 'POST', '/uploads', {
      token: TOKEN,
      body: { source_folder: source, destination_bucket: bucket, destination_prefix: '../elsewhere' },
    });
    assert.equal(smuggled.status, 400);
    assert.equal(smuggled.json.error, 'invalid_destination_prefix');

    const created = await call(service, 'POST', '/uploads', {
      token: TOKEN,
      body: {
        source_folder: source,
        destination_bucket: bucket,
        destination_prefix: 'pre',
        upload_id: 'sec',
      },
    });
    assert.equal(created.status, 201, created.text);
    const completed = (count: number) => async (): Promise<boolean> => {
      const details = await call(service, 'GET', '/uploads/sec', { token: TOKEN });
      return (details.json.files as { completed: number }).completed === count;
    };
    await waitFor(completed(1), { timeoutMs: 30_000, intervalMs: 100, message: 'kept.txt uploaded' });
    // A link made while the folder is watched, then a file: once the file is uploaded, the link
    // has been seen and passed over too.
    await symlink(path.join(outside, 'secret.txt'), path.join(source, 'late-link.txt'));
    await writeFile(path.join(source, 'later.txt'), 'inside, later');
    await waitFor(completed(2), { timeoutMs: 30_000, intervalMs: 100, message: 'later.txt uploaded' });
    const files = await call(service, 'GET', '/uploads/sec/files', { token: TOKEN });
    assert.deepEqual(
      (files.json.items as { relative_path: string }[]).map((item) => item.relative_path).sort(),
      ['kept.txt', 'later.txt'],
    );
    assert.deepEqual((await listKeys(s3, bucket)).sort(), ['pre/kept.txt', 'pre/later.txt']);

    // No answer and no log line carries a secret.
    const secretKey = testS3().secretAccessKey;
    const logs = service.logs.map((entry) => JSON.stringify(entry)).join('\n');
    assert.ok(service.logs.length > 10, 'the service logged its work');
    for (const secret of [TOKEN, secretKey]) {
      assert.ok(!answers.some((answer) => answer.includes(secret)), 'an answer carries a secret');
      assert.ok(!logs.includes(secret), 'a log line carries a secret');
    }
    assert.equal(await service.stop(), 0);
  });

  it('refuses to start on HOST=0.0.0.0 without a token: exit 78 and one line that says what to set', async () => {
    const { code, stderr, stdout } = await refusedStart(work, { HOST: '0.0.0.0' });
    assert.equal(code, EX_CONFIG, stderr);
    assert.equal(stdout, '', 'nothing started');
    const lines = stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, stderr);
    assert.match(
      lines[0] ?? '',
      /^configuration error: HOST: '0\.0\.0\.0' lets other machines reach the API and API_TOKEN is not set.*ALLOW_UNAUTHENTICATED=true/,
    );
  });

  it('refuses to start when an allowed source root does not exist: exit 78', async () => {
    const missing = path.join(work, 'no-such-root');
    const { code, stderr } = await refusedStart(work, { HOST: '127.0.0.1', ALLOWED_SOURCE_ROOTS: missing });
    assert.equal(code, EX_CONFIG, stderr);
    assert.equal(stderr, `configuration error: ALLOWED_SOURCE_ROOTS: '${missing}' does not exist\n`);
  });

  it('refuses to start when ALLOWED_SOURCE_ROOTS is set but empty: exit 78, not confinement turned off', async () => {
    const { code, stderr, stdout } = await refusedStart(work, {
      HOST: '127.0.0.1',
      ALLOWED_SOURCE_ROOTS: ' : ',
    });
    assert.equal(code, EX_CONFIG, stderr);
    assert.equal(stdout, '', 'nothing started');
    assert.equal(
      stderr,
      'configuration error: ALLOWED_SOURCE_ROOTS: is set but names no folder (" : "): list the folders sources may be in, separated by \':\', or unset it to allow any folder\n',
    );
  });
  it('stops scanning a source folder that is replaced by a symbolic link while it is watched', async () => {
    const source = path.join(work, 'swapped');
    const elsewhere = path.join(work, 'elsewhere');
    await mkdir(source, { recursive: true });
    await mkdir(elsewhere);
    await writeFile(path.join(source, 'before.txt'), 'uploaded before the swap');
    await writeFile(path.join(elsewhere, 'not-ours.txt'), 'must never be listed or uploaded');
    const service = await startService({ databaseFile: path.join(work, 'swapped.db') });
    const created = await call(service, 'POST', '/uploads', {
      body: { source_folder: source, destination_bucket: bucket, destination_prefix: 'swapped' },
    });
    assert.equal(created.status, 201, created.text);
    const uploadId = String(created.json.upload_id);
    await waitFor(async () => (await listKeys(s3, bucket, 'swapped/')).includes('swapped/before.txt'), {
      message: 'the first file uploaded',
    });

    await rename(source, `${source}.old`);
    await symlink(elsewhere, source);
    const details = await waitFor(
      async () => {
        const answer = await call(service, 'GET', `/uploads/${uploadId}`);
        return /symbolic link/.test(String(answer.json.last_error)) ? answer.json : undefined;
      },
      { timeoutMs: 15_000, message: 'the request says its folder now leads through a link' },
    );
    assert.equal(details.status, 'active');
    const files = await call(service, 'GET', `/uploads/${uploadId}/files`);
    const paths = (files.json.items as { relative_path: string }[]).map((item) => item.relative_path);
    assert.deepEqual(paths, ['before.txt'], 'nothing behind the link is even listed');
    assert.deepEqual(await listKeys(s3, bucket, 'swapped/'), ['swapped/before.txt']);
    await service.stop();
  });
});
