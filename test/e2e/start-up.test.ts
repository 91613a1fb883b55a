// Starting the service as users do: the built `dist/main.js`, what it says at start-up, and a
// build that does nothing when `dist/` is up to date with the sources.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startService } from '../support/service-process.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const NO_S3_SETTINGS = /no S3 endpoint and no credentials are set/;
const SDK_NODE_NOTICE = /NodeVersionSupportWarning/;
const nodeMajor = Number(process.versions.node.split('.')[0]);

let work: string;

before(async () => {
  work = await makeTempDir('start-up');
});

after(async () => {
  await removeTempDir(work);
});

// Pino writes levels as numbers: 40 is warn.
function warnings(logs: Record<string, unknown>[], pattern: RegExp): Record<string, unknown>[] {
  return logs.filter((line) => line.level === 40 && pattern.test(String(line.msg)));
}

describe('start-up', () => {
  it('says once that no S3 is set when nothing points at one, and prints no SDK notice', async () => {
    const service = await startService({
      databaseFile: path.join(work, 'unset.db'),
      built: true,
      withoutS3Settings: true,
    });
    const code = await service.stop();
    assert.equal(code, 0);
    assert.equal(warnings(service.logs, NO_S3_SETTINGS).length, 1, JSON.stringify(service.logs));
    assert.doesNotMatch(service.stderr.join(''), SDK_NODE_NOTICE);
  });

  it('says nothing about S3 settings when an endpoint and keys are set', async () => {
    const service = await startService({ databaseFile: path.join(work, 'set.db'), built: true });
    await service.stop();
    assert.deepEqual(warnings(service.logs, NO_S3_SETTINGS), []);
    assert.equal(service.stderr.join(''), '');
  });

  it(
    "leaves the SDK's notice to whoever asks for it (the check above can see it)",
    { skip: nodeMajor >= 22 && 'the SDK prints its notice only on Node < 22' },
    async () => {
      const service = await startService({
        databaseFile: path.join(work, 'notice.db'),
        built: true,
        env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'false' },
      });
      await service.stop();
      assert.match(service.stderr.join(''), SDK_NODE_NOTICE);
    },
  );

  it('builds nothing when dist/ is up to date with the sources', async () => {
    const outputs = ['main.js', 'vendor/redoc/redoc.standalone.js', 'ui/index.html'].map((file) =>
      path.join(repoRoot, 'dist', file),
    );
    const before = await Promise.all(outputs.map(async (file) => (await stat(file)).mtimeMs));
    await promisify(execFile)('npm', ['run', 'build'], { cwd: repoRoot });
    const after = await Promise.all(outputs.map(async (file) => (await stat(file)).mtimeMs));
    assert.deepEqual(after, before, 'an up-to-date build must not write dist/');
  });
});
