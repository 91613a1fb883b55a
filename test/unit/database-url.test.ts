import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { databaseKindOf, redactPassword, secretsOf } from '../../src/store/database-url.js';

describe('DATABASE_URL', () => {
  it('names the store by its scheme', () => {
    assert.equal(databaseKindOf('sqlite:./data/uploads.db'), 'sqlite');
    assert.equal(databaseKindOf('postgres://db/uploads'), 'postgres');
    assert.equal(databaseKindOf('PostgreSQL://db/uploads'), 'postgres');
    assert.equal(databaseKindOf('mysql://db/uploads'), undefined);
    assert.equal(databaseKindOf('uploads.db'), undefined);
  });

  it('hides the password wherever a URL holds one, and nothing else', () => {
    const cases: [string, string][] = [
      ['postgres://app:pw@db:5432/uploads', 'postgres://app:***@db:5432/uploads'],
      [
        'postgresql://app:p%40ss%2Fw@db/uploads?sslmode=require',
        'postgresql://app:***@db/uploads?sslmode=require',
      ],
      // An @ left unencoded in the password: the host follows the last one, as a URL parser reads it.
      ['postgres://app:p@ss@db/uploads', 'postgres://app:***@db/uploads'],
      [
        'postgres://db/uploads?user=app&password=pw&schema=q',
        'postgres://db/uploads?user=app&password=***&schema=q',
      ],
      ['postgres://app:@db/uploads?sslpassword=key', 'postgres://app:***@db/uploads?sslpassword=***'],
      ['postgres://app@db/uploads', 'postgres://app@db/uploads'],
      ['postgres://db/uploads?application_name=a@b', 'postgres://db/uploads?application_name=a@b'],
      ['sqlite:./data/uploads.db', 'sqlite:./data/uploads.db'],
    ];
    for (const [url, redacted] of cases) assert.equal(redactPassword(url), redacted, url);
  });

  it('lists the password as written and decoded, for the log to censor', () => {
    assert.deepEqual(secretsOf('postgres://app:p%40ssword@db/uploads'), ['p%40ssword', 'p@ssword']);
    assert.deepEqual(secretsOf('postgres://db/uploads?password=long-password'), ['long-password']);
    assert.deepEqual(secretsOf('postgres://app@db/uploads'), []);
    assert.deepEqual(secretsOf('sqlite:./data/uploads.db'), []);
  });
});
