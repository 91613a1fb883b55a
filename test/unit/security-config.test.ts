// Security settings: the API token, listening beyond loopback, the allowed source roots, and the
// secrets kept out of the logs.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ConfigError,
  isLoopbackHost,
  loadConfig,
  resolveSourceRoots,
  unauthenticatedExposureProblem,
  type SecuritySettings,
} from '../../src/config.js';
import { createLogger } from '../../src/logger.js';

const TOKEN = 'k3Y-0f_the.API~token+/8w==';
const NO_TOKEN: SecuritySettings = {
  apiToken: undefined,
  allowUnauthenticated: false,
  allowedSourceRoots: undefined,
  notifyAllowedHosts: null,
};

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env, '/srv/app');
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  assert.fail(`expected a configuration error for ${JSON.stringify(env)}`);
}

describe('which hosts are loopback', () => {
  it('takes 127.0.0.0/8, ::1 (any spelling) and localhost as loopback', () => {
    for (const host of [
      '127.0.0.1',
      '127.1.2.3',
      '127.255.255.254',
      '::1',
      '[::1]',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
      'localhost',
      'LOCALHOST',
      'localhost.',
    ]) {
      assert.equal(isLoopbackHost(host), true, host);
    }
  });

  it('takes every other address or name as reachable from elsewhere', () => {
    for (const host of [
      '0.0.0.0',
      '::',
      '[::]',
      '10.0.0.5',
      '192.168.1.10',
      '128.0.0.1',
      '::ffff:10.0.0.1',
      'fe80::1',
      'example.com',
      'localhost.example.com',
      '127.0.0.1.example.com',
    ]) {
      assert.equal(isLoopbackHost(host), false, host);
    }
  });
});

describe('listening beyond loopback without a token', () => {
  it('is a problem only off loopback, with no token and no ALLOW_UNAUTHENTICATED', () => {
    assert.equal(unauthenticatedExposureProblem('127.0.0.1', NO_TOKEN), null);
    assert.equal(unauthenticatedExposureProblem('::1', NO_TOKEN), null);
    assert.equal(unauthenticatedExposureProblem('0.0.0.0', { ...NO_TOKEN, apiToken: TOKEN }), null);
    assert.equal(
      unauthenticatedExposureProblem('0.0.0.0', { ...NO_TOKEN, allowUnauthenticated: true }),
      null,
    );
    for (const host of ['0.0.0.0', '::', '10.1.2.3', 'api.example.com']) {
      assert.match(unauthenticatedExposureProblem(host, NO_TOKEN) ?? '', /API_TOKEN is not set/, host);
    }
  });

  it('stops the configuration with one line that says why and what to set', () => {
    const error = configError({ HOST: '0.0.0.0' });
    assert.equal(error.variable, 'HOST');
    assert.doesNotMatch(error.message, /\n/);
    assert.match(
      error.message,
      /^HOST: '0\.0\.0\.0' lets other machines reach the API and API_TOKEN is not set/,
    );
    assert.match(error.message, /set API_TOKEN/);
    assert.match(error.message, /HOST=127\.0\.0\.1/);
    assert.match(error.message, /ALLOW_UNAUTHENTICATED=true/);
  });

  it('starts with a token, or with ALLOW_UNAUTHENTICATED=true', () => {
    const withToken = loadConfig({ HOST: '0.0.0.0', API_TOKEN: TOKEN });
    assert.equal(withToken.security.apiToken, TOKEN);
    assert.equal(withToken.security.allowUnauthenticated, false);
    const allowed = loadConfig({ HOST: '::', ALLOW_UNAUTHENTICATED: 'true' });
    assert.equal(allowed.security.apiToken, undefined);
    assert.equal(allowed.security.allowUnauthenticated, true);
    assert.equal(configError({ HOST: '0.0.0.0', ALLOW_UNAUTHENTICATED: 'false' }).variable, 'HOST');
    assert.equal(configError({ ALLOW_UNAUTHENTICATED: 'maybe' }).variable, 'ALLOW_UNAUTHENTICATED');
  });

  it('needs nothing by default (127.0.0.1, no token)', () => {
    assert.deepEqual(loadConfig({}).security, NO_TOKEN);
  });
});

describe('API_TOKEN', () => {
  it('must be at least 16 characters that fit in a bearer header', () => {
    assert.match(
      configError({ API_TOKEN: 'short' }).message,
      /^API_TOKEN: is 5 characters long; use at least 16/,
    );
    for (const token of [
      'has a space in it!!',
      'quote"quote"quote"',
      'comma,comma,comma,comma',
      'é'.repeat(20),
    ]) {
      assert.match(configError({ API_TOKEN: token }).message, /^API_TOKEN: may only hold/, token);
    }
    assert.equal(loadConfig({ API_TOKEN: ` ${TOKEN} ` }).security.apiToken, TOKEN);
  });
});

describe('ALLOWED_SOURCE_ROOTS', () => {
  let root: string;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'security-roots-'));
    await mkdir(path.join(root, 'data', 'in'), { recursive: true });
    await mkdir(path.join(root, 'other'));
    await writeFile(path.join(root, 'file.txt'), 'x');
    await symlink(path.join(root, 'data'), path.join(root, 'data-link'));
  });

  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('is a list of absolute folders separated by ":", like PATH', () => {
    assert.deepEqual(loadConfig({ ALLOWED_SOURCE_ROOTS: '/data/in:/srv/x/' }).security.allowedSourceRoots, [
      '/data/in',
      '/srv/x',
    ]);
    assert.deepEqual(loadConfig({ ALLOWED_SOURCE_ROOTS: ':/a/../b::' }).security.allowedSourceRoots, ['/b']);
    assert.equal(loadConfig({}).security.allowedSourceRoots, undefined);
    const error = configError({ ALLOWED_SOURCE_ROOTS: '/data:relative/folder' });
    assert.equal(error.variable, 'ALLOWED_SOURCE_ROOTS');
    assert.match(error.message, /'relative\/folder' is not an absolute path/);
  });

  it('set but naming no folder is a configuration error saying to unset it, not confinement turned off', () => {
    for (const value of ['', ' ', ':', ' : :: ', '\t\n']) {
      const error = configError({ ALLOWED_SOURCE_ROOTS: value });
      assert.equal(error.variable, 'ALLOWED_SOURCE_ROOTS', JSON.stringify(value));
      assert.match(error.message, /is set but names no folder .*or unset it to allow any folder$/);
      assert.doesNotMatch(error.message, /\n/, 'one line');
    }
  });

  it('is resolved to real paths at start-up; a missing root or a file is a configuration error', async () => {
    assert.deepEqual(
      await resolveSourceRoots([
        path.join(root, 'data-link'),
        path.join(root, 'data'),
        path.join(root, 'other'),
      ]),
      [path.join(root, 'data'), path.join(root, 'other')],
    );
    await assert.rejects(resolveSourceRoots([path.join(root, 'missing')]), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.variable, 'ALLOWED_SOURCE_ROOTS');
      assert.match(error.message, /missing' does not exist$/);
      return true;
    });
    await assert.rejects(resolveSourceRoots([path.join(root, 'file.txt')]), /file\.txt' is not a folder/);
  });
});

describe('secrets in the logs', () => {
  // Made at run time, shaped like real ones (40 base64 characters; a token with quotes and a
  // backslash, which JSON escapes), so that no secret-looking value is ever committed.
  const SECRET_KEY = randomBytes(30).toString('base64');
  const SESSION_TOKEN = `${randomBytes(12).toString('base64')}session"token\\with+quotes`;
  const ACCESS_KEY_ID = `TEST${randomBytes(8).toString('hex').toUpperCase()}`;

  function capturingLogger(): { logger: ReturnType<typeof createLogger>; output: () => string } {
    const lines: string[] = [];
    const logger = createLogger('trace', {
      secrets: [SECRET_KEY, SESSION_TOKEN, TOKEN, undefined],
      destination: { write: (line: string) => void lines.push(line) },
    });
    return { logger, output: () => lines.join('') };
  }

  it('censors the configuration, headers and secret fields at any usual depth', () => {
    const { logger, output } = capturingLogger();
    const config = loadConfig({
      AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET_KEY,
      AWS_SESSION_TOKEN: SESSION_TOKEN,
      API_TOKEN: TOKEN,
      HOST: '0.0.0.0',
    });
    logger.info({ config }, 'configuration');
    logger.info(config.s3, 's3 settings');
    logger.info({ req: { headers: { authorization: `Bearer ${TOKEN}` } } }, 'request');
    logger.info({ headers: { authorization: 'Basic dXNlcjpwYXNzd29yZA==' } }, 'other scheme');
    logger.info({ apiToken: 'any value at all' }, 'named field');
    const text = output();
    for (const secret of [
      SECRET_KEY,
      SESSION_TOKEN,
      TOKEN,
      ACCESS_KEY_ID,
      'dXNlcjpwYXNzd29yZA==',
      'any value',
    ]) {
      assert.ok(!text.includes(secret), `${secret} is in the logs: ${text}`);
    }
    const lines = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const configuration = lines[0]?.config as {
      s3: Record<string, unknown>;
      security: Record<string, unknown>;
    };
    assert.equal(configuration.s3.secretAccessKey, '[redacted]');
    assert.equal(configuration.s3.sessionToken, '[redacted]');
    assert.equal(configuration.security.apiToken, '[redacted]');
    assert.equal(configuration.s3.region, 'us-east-1', 'the rest is logged as is');
  });

  it('censors the secret values wherever they appear, in messages and errors too', () => {
    const { logger, output } = capturingLogger();
    logger.error({ err: new Error(`S3 refused the key ${SECRET_KEY}`) }, 'upload failed');
    logger.warn(`session ${SESSION_TOKEN} expired`);
    logger.info({ note: { deep: { deeper: { deepest: { value: TOKEN } } } } }, 'nested');
    const text = output();
    for (const secret of [SECRET_KEY, SESSION_TOKEN, TOKEN, JSON.stringify(SESSION_TOKEN).slice(1, -1)]) {
      assert.ok(!text.includes(secret), `${secret} is in the logs: ${text}`);
    }
    for (const line of text.trim().split('\n')) JSON.parse(line); // still JSON lines
    assert.match(text, /S3 refused the key \[redacted\]/);
  });
});
