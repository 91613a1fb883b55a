// LOG_FORMAT=pretty in the built service, as users run it: readable lines from start to stop, the
// ready line among them, one access line per request; a fatal start-up error still says why.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from '../support/poll.js';
import { api, killAllServices, startService, type ServiceProcess } from '../support/service-process.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

/** `[2026-01-31 12:00:00.000 +0100] INFO: message key=value ...` */
const PRETTY_LINE = /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d{4}\] (DEBUG|INFO|WARN|ERROR|FATAL): \S/;

let work: string;

before(async () => {
  work = await makeTempDir('log-format');
});

after(async () => {
  assert.equal(await killAllServices(), 0, 'every test stops the services it started');
  await removeTempDir(work);
});

/** The lines of the service's output that mention `text`. */
const linesWith = (service: ServiceProcess, text: string): string[] =>
  service.output.filter((line) => line.includes(text));

describe('LOG_FORMAT=pretty', () => {
  it('prints readable lines, the ready line among them, and one access line per request', async () => {
    const service = await startService({
      databaseFile: path.join(work, 'pretty.db'),
      built: true,
      env: { LOG_FORMAT: 'pretty' }, // LOG_LEVEL is debug in tests: successes are logged too
    });
    assert.deepEqual(service.logs, [], 'no JSON line');
    const [ready] = linesWith(service, 'service ready');
    assert.match(ready ?? '', PRETTY_LINE);
    assert.match(ready ?? '', /INFO: service ready address=http:\/\/127\.0\.0\.1:\d+ version=\S+/);

    assert.equal((await api(service, 'GET', '/uploads?status=all')).status, 200);
    assert.equal((await api(service, 'GET', '/uploads/nobody')).status, 404);
    const listed = await waitFor(() => linesWith(service, 'url=/uploads?status=all')[0], {
      message: 'the access line of GET /uploads',
    });
    const refused = await waitFor(() => linesWith(service, 'url=/uploads/nobody')[0], {
      message: 'the access line of the 404',
    });
    assert.match(listed, /DEBUG: http request reqId=\S+ method=GET url=\/uploads\?status=all status=200 /);
    assert.match(listed, / durationMs=[\d.]+ bytes=\d+ /);
    assert.match(refused, /WARN: http request .*status=404 .*error=upload_not_found/);

    assert.equal(await service.stop(), 0);
    assert.equal(linesWith(service, 'url=/uploads?status=all').length, 1, 'one line per request');
    assert.equal(linesWith(service, 'url=/uploads/nobody').length, 1, 'no second line for a 4xx');
    assert.deepEqual(linesWith(service, 'incoming request'), []);
    assert.deepEqual(linesWith(service, 'request completed'), []);
    // Every line, up to the last one written while stopping, is a readable one.
    const notPretty = service.output.filter((line) => !PRETTY_LINE.test(line));
    assert.deepEqual(notPretty, []);
    assert.match(service.output.at(-1) ?? '', /INFO: stopped$/);
  });

  it('still prints a fatal start-up error before it exits', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      await assert.rejects(
        startService({
          databaseFile: path.join(work, 'port-taken.db'),
          built: true,
          env: { LOG_FORMAT: 'pretty', PORT: String(port) },
        }),
        /exited with 1 before it was ready: fatal: .*EADDRINUSE/,
      );
    } finally {
      taken.close();
    }
  });
});
