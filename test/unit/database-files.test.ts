// Which of the service's database files lie inside a watched folder, and the filter that leaves
// them out; the files SQLite keeps for a database, by real path.
import assert from 'node:assert/strict';
import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { databaseFilesInside, excluding } from '../../src/engine/database-files.js';
import { sqliteFilesOf } from '../../src/store/sqlite/files.js';
import { makeTempDir, removeTempDir } from '../support/temp-tree.js';

const FILES = ['/data/watched/state/u.db', '/data/watched/state/u.db-wal', '/data/u.db-shm'];

describe('the database files inside a folder', () => {
  test('are those under it, as relative paths', () => {
    assert.deepEqual([...databaseFilesInside('/data/watched', FILES)], ['state/u.db', 'state/u.db-wal']);
    assert.deepEqual([...databaseFilesInside('/data/watched/state', FILES)], ['u.db', 'u.db-wal']);
  });

  test('are none for a folder beside it, above it by name only, or the file itself', () => {
    assert.equal(databaseFilesInside('/data/watched-2', FILES).size, 0);
    assert.equal(databaseFilesInside('/data/watch', FILES).size, 0);
    assert.equal(databaseFilesInside('/data/watched/state/u.db', FILES).size, 0);
    assert.equal(databaseFilesInside('/data/watched/state/u.db/x', FILES).size, 0);
  });

  test('are refused by the filter, whatever the pattern; other paths as the pattern says', () => {
    const filter = excluding(
      (relativePath) => relativePath.endsWith('.db') || relativePath === 'a',
      new Set(['state/u.db']),
    );
    assert.equal(filter('state/u.db'), false);
    assert.equal(filter('other/u.db'), true);
    assert.equal(filter('a'), true);
    assert.equal(filter('b'), false);
  });
});

describe('the files of a SQLite database', () => {
  test('are the file and its companions, by real path, through a link too', async (t) => {
    const root = await makeTempDir('database-files');
    t.after(() => removeTempDir(root));
    await mkdir(path.join(root, 'real'));
    await symlink(path.join(root, 'real'), path.join(root, 'link'));
    const real = path.join(root, 'real', 'u.db');
    // The file need not exist yet: its folder is resolved.
    assert.deepEqual(await sqliteFilesOf(path.join(root, 'link', 'u.db')), [
      real,
      `${real}-wal`,
      `${real}-shm`,
      `${real}-journal`,
    ]);
  });
});
