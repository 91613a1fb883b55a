// The dashboard in a real browser (Debian's chromium, driven by playwright-core) against the built
// service and a real S3: an upload created through the form (a refused value first, with the API's
// own message), its files completing and its bars at 100%, a file added to the folder appearing
// live, the cancel; and, with an API token, the token form. Screenshots go to
// artifacts/screenshots/, which CI keeps.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createTestBucket, deleteBucket, listKeys, testS3Client } from '../support/s3.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { makeTempDir, removeTempDir, writeTreeFile } from '../support/temp-tree.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCREENSHOTS = path.join(repoRoot, 'artifacts', 'screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const TIMEOUT_MS = 10_000;
const TOKEN = 'dashboard-e2e-token-5f2a9c';

let s3: S3Client;
let bucket: string;
let work: string;
let browser: Browser;

before(async () => {
  s3 = testS3Client();
  bucket = await createTestBucket(s3, 'dashboard');
  work = await makeTempDir('e2e-dashboard');
  await mkdir(SCREENSHOTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await deleteBucket(s3, bucket);
  await removeTempDir(work);
  s3.destroy();
});

afterEach(async () => {
  assert.equal(await killAllServices(), 0, 'a test left a service process running');
});

function start(label: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  return startService({ databaseFile: path.join(work, `${label}.db`), built: true, env });
}

interface Opened {
  page: Page;
  /** What the page threw, for the test to check at its end. */
  errors: string[];
}

async function openDashboard(service: ServiceProcess): Promise<Opened> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(TIMEOUT_MS);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${service.baseUrl}/ui`);
  return { page, errors };
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

describe('the dashboard in a browser', () => {
  it('creates an upload through the form, shows it complete and a new file arrive live, and cancels it', async () => {
    const source = path.join(work, 'run-1');
    for (const name of ['a.fastq.gz', 'b.fastq.gz', 'lane2/c.fastq.gz']) {
      await writeTreeFile(path.join(source, name), `reads of ${name}\n`.repeat(500));
    }
    await writeTreeFile(path.join(source, 'notes.txt'), 'not matched by the pattern\n');
    const service = await start('flow');
    const { page, errors } = await openDashboard(service);
    await page.getByText('No uploads to show').waitFor();
    // The instances sharing the database: here this one, with the host and pid /instances gives.
    const [self] = (await api<{ host: string; pid: number }[]>(service, 'GET', '/instances')).body;
    const instances = page.getByRole('region', { name: 'Instances' });
    await instances.getByText(`${self!.host}`, { exact: true }).waitFor();
    await instances.getByText(`(pid ${self!.pid},`, { exact: false }).waitFor();

    // A bad bucket name: the form shows what the API says of the same order, word for word.
    const form = page.getByRole('form', { name: 'New upload' });
    await form.getByLabel('Source folder').fill(source);
    await form.getByLabel('Bucket', { exact: true }).fill('Bad_Bucket');
    await form.getByRole('button', { name: 'Create upload' }).click();
    const refused = await api<{ message: string; details: { message: string }[] }>(
      service,
      'POST',
      '/uploads',
      {
        source_folder: source,
        destination_bucket: 'Bad_Bucket',
      },
    );
    assert.equal(refused.status, 400);
    await form.getByRole('alert').getByText(refused.body.message, { exact: true }).waitFor();
    assert.equal(await form.getByLabel('Bucket', { exact: true }).getAttribute('aria-invalid'), 'true');
    await form.getByText(refused.body.details[0]!.message, { exact: true }).waitFor();
    await screenshot(page, 'dashboard-refused');

    await form.getByLabel('Bucket', { exact: true }).fill(bucket);
    await form.getByLabel('Key prefix (optional)').fill('runs/1');
    await form.getByLabel('Pattern (optional)').fill('*.fastq.gz');
    await form.getByLabel('Upload id (optional)').fill('run-1');
    await form.getByRole('button', { name: 'Create upload' }).click();

    // Every file completes: the bars at 100%, the phase idle, in the table and in the open panel.
    const row = page.locator('tr[data-upload-id="run-1"]');
    await row.getByText('3 / 3 files · 100%').waitFor();
    await row.locator('[data-phase="idle"]').waitFor();
    const panel = page.getByRole('region', { name: /^Upload run-1/ });
    await panel.locator('h2 [data-phase="idle"]').waitFor();
    assert.equal(await row.getByRole('progressbar', { name: 'Files of run-1' }).getAttribute('value'), '3');
    const bytes = row.getByRole('progressbar', { name: 'Bytes of run-1' });
    assert.equal(await bytes.getAttribute('value'), await bytes.getAttribute('max'));
    assert.match((await row.textContent()) ?? '', /KiB \/ [\d.]+ KiB · 100%/);
    const files = panel.getByRole('region', { name: 'Files' });
    await files.locator('tbody .status-completed').nth(2).waitFor();
    assert.equal(await files.locator('tbody tr').count(), 3);
    await screenshot(page, 'dashboard-idle');

    // A new file: the stream tells the page, which shows it without a reload.
    await page.locator('[data-live="live"]').waitFor();
    await writeTreeFile(path.join(source, 'lane2/d.fastq.gz'), 'reads of d\n'.repeat(500));
    await files.locator('tr[data-path="lane2/d.fastq.gz"] .status-completed').waitFor();
    await row.getByText('4 / 4 files · 100%').waitFor();
    await screenshot(page, 'dashboard-new-file');

    // Cancel, confirmed in a dialog first.
    await panel.getByRole('button', { name: 'Cancel upload…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Cancel run-1?' });
    await dialog.getByRole('button', { name: 'Keep it' }).waitFor();
    await screenshot(page, 'dashboard-cancel-dialog');
    await dialog.getByRole('button', { name: 'Cancel the upload' }).click();
    await panel.locator('h2 [data-phase="cancelled"]').waitFor();
    await row.waitFor({ state: 'detached' }); // the list shows live uploads unless asked for cancelled ones
    await page.getByLabel('Show cancelled uploads').check();
    await row.locator('[data-phase="cancelled"]').waitFor();
    await screenshot(page, 'dashboard-cancelled');

    const upload = await api<{ status: string }>(service, 'GET', '/uploads/run-1');
    assert.equal(upload.body.status, 'cancelled');
    assert.deepEqual(await listKeys(s3, bucket, 'runs/1/'), [
      'runs/1/a.fastq.gz',
      'runs/1/b.fastq.gz',
      'runs/1/lane2/c.fastq.gz',
      'runs/1/lane2/d.fastq.gz',
    ]);
    await page.close();
    assert.deepEqual(errors, [], 'the page threw');
    await service.stop();
  });

  it('creates a one-shot upload with "Watch for new files" unticked, and shows it completed', async () => {
    const source = path.join(work, 'once');
    for (const name of ['a.txt', 'sub/b.txt']) await writeTreeFile(path.join(source, name), `${name}\n`);
    const service = await start('once');
    const { page, errors } = await openDashboard(service);
    const form = page.getByRole('form', { name: 'New upload' });
    assert.equal(await form.getByLabel('Watch for new files').isChecked(), true, 'watched by default');
    await form.getByLabel('Source folder').fill(source);
    await form.getByLabel('Bucket', { exact: true }).fill(bucket);
    await form.getByLabel('Key prefix (optional)').fill('once');
    await form.getByLabel('Upload id (optional)').fill('once');
    await form.getByLabel('Watch for new files').uncheck();
    await form.getByRole('button', { name: 'Create upload' }).click();

    const row = page.locator('tr[data-upload-id="once"]');
    await row.locator('[data-phase="completed"]').waitFor();
    const panel = page.getByRole('region', { name: /^Upload once/ });
    await panel.locator('h2 [data-phase="completed"]').waitFor();
    await panel.getByText('(once: not watched)').waitFor();
    assert.equal(await panel.getByRole('button', { name: 'Cancel upload…' }).count(), 0);
    await screenshot(page, 'dashboard-one-shot-completed');
    assert.deepEqual(await listKeys(s3, bucket, 'once/'), ['once/a.txt', 'once/sub/b.txt']);
    await page.close();
    assert.deepEqual(errors, [], 'the page threw');
    await service.stop();
  });

  it('with API_TOKEN set, asks for the token once, keeps it for the session, and forgets it; failed files first', async () => {
    const service = await start('token', { API_TOKEN: TOKEN });
    const { page, errors } = await openDashboard(service);
    const tokenForm = page.getByRole('form', { name: 'API token' });
    await tokenForm.getByLabel('API token').fill('not-the-token');
    await tokenForm.getByRole('button', { name: 'Use this token' }).click();
    await tokenForm
      .getByRole('alert')
      .getByText(/^The API token is wrong/)
      .waitFor();
    await screenshot(page, 'dashboard-token');

    await tokenForm.getByLabel('API token').fill(TOKEN);
    await tokenForm.getByRole('button', { name: 'Use this token' }).click();
    await page.getByText('No uploads to show').waitFor();
    await page.locator('[data-live="live"]').waitFor();
    // The page's own globals, evaluated in the browser.
    assert.deepEqual(await page.evaluate<string[]>('Object.values(sessionStorage)'), [TOKEN]);
    assert.deepEqual(
      await page.evaluate<string[]>('Object.keys(localStorage)'),
      [],
      'kept for the session only',
    );

    // An upload with a file S3 cannot take (its key is over 1024 bytes): failed files come first,
    // with their message, and the status filter shows them alone.
    const source = path.join(work, 'with-failure');
    const tooLong = `${Array.from({ length: 6 }, (_, i) => `${'deep'.repeat(50)}-${i}`).join('/')}/x.txt`;
    await writeTreeFile(path.join(source, 'a.txt'), 'fine\n');
    await writeTreeFile(path.join(source, tooLong), 'its key is too long\n');
    const created = await fetch(`${service.baseUrl}/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ source_folder: source, destination_bucket: bucket, upload_id: 'with-failure' }),
    });
    assert.equal(created.status, 201);
    await page.getByRole('link', { name: 'with-failure' }).click();
    const panel = page.getByRole('region', { name: /^Upload with-failure/ });
    await panel.locator('h2 [data-phase="failed"]').waitFor();
    const rows = panel.getByRole('region', { name: 'Files' }).locator('tbody tr');
    await rows.nth(1).locator('.status-completed').waitFor();
    assert.equal(await rows.first().getAttribute('data-path'), tooLong);
    await rows.first().locator('.status-failed').waitFor();
    await rows
      .first()
      .getByText(/S3 allows at most 1024/)
      .waitFor();
    await screenshot(page, 'dashboard-failed-first');
    await panel.getByLabel('Status').selectOption('completed');
    await rows.first().locator('.status-completed').waitFor();
    assert.equal(await rows.count(), 1);
    assert.equal(await rows.first().getAttribute('data-path'), 'a.txt');

    await page.reload(); // the same browser session: no question asked again
    await panel.locator('h2 [data-phase="failed"]').waitFor();
    await page.getByRole('button', { name: 'Forget the token' }).click();
    await tokenForm.waitFor();
    assert.deepEqual(await page.evaluate<string[]>('Object.keys(sessionStorage)'), []);
    await page.close();
    assert.deepEqual(errors, [], 'the page threw');
    await service.stop();
  });
});
