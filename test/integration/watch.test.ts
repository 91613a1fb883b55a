// The watch side against real folders and real inotify: full scans and file-system events.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, it } from 'node:test';
import type { ObservedFile } from '../../src/domain/model.js';
import { compilePattern } from '../../src/domain/pattern.js';
import { ChangeBuffer } from '../../src/watch/change-buffer.js';
import { FolderUnreadableError, scanFolder, type ScanOptions } from '../../src/watch/scanner.js';
import type { FolderWatch, PathFilter } from '../../src/watch/types.js';
import { FolderSubscriptions } from '../../src/watch/subscriptions.js';
import { MissedChangesError, watchFolder } from '../../src/watch/watcher.js';

const everything: PathFilter = () => true;

async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  { timeoutMs = 5000, intervalMs = 20, message = 'condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

let base: string;
before(async () => {
  base = await mkdtemp(path.join(tmpdir(), 'watch-test-'));
});
after(async () => {
  await chmod(base, 0o755).catch(() => undefined);
  await rm(base, { recursive: true, force: true });
});

let folderCount = 0;
async function newFolder(name: string): Promise<string> {
  const folder = path.join(base, `${name}-${++folderCount}`);
  await mkdir(folder, { recursive: true });
  return folder;
}

async function scanAll(root: string, filter: PathFilter, options?: ScanOptions): Promise<ObservedFile[][]> {
  const batches: ObservedFile[][] = [];
  for await (const batch of scanFolder(root, filter, options)) batches.push(batch);
  return batches;
}

const sortedPaths = (files: Iterable<ObservedFile>): string[] =>
  [...files].map((file) => file.relativePath).sort();

async function openDescriptorCount(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

describe('scanFolder', () => {
  it('streams a nested tree of 3,000 files in batches and finds exactly the matching files', async () => {
    const root = await newFolder('tree');
    const expected = new Map<string, { size: number; mtimeMs: number }>();
    let n = 0;
    for (let top = 0; top < 10; top++) {
      for (let sub = 0; sub < 10; sub++) {
        const folder = path.join(root, `t${top}`, top % 3 === 0 ? `.s${sub}` : `s${sub}`);
        await mkdir(folder, { recursive: true });
        for (let file = 0; file < 30; file++) {
          const name = `f${file}.${file % 3 === 0 ? 'bin' : 'txt'}`;
          const relativePath = path.relative(root, path.join(folder, name)).split(path.sep).join('/');
          const content = 'x'.repeat(n % 97);
          const mtime = new Date(Date.UTC(2024, 0, 1) + n * 1000);
          await writeFile(path.join(folder, name), content);
          await utimes(path.join(folder, name), mtime, mtime);
          if (name.endsWith('.txt'))
            expected.set(relativePath, { size: content.length, mtimeMs: mtime.getTime() });
          n++;
        }
      }
    }
    assert.equal(n, 3000);

    const batches = await scanAll(root, compilePattern('*.txt'), { batchSize: 250 });
    const found = batches.flat();
    assert.equal(found.length, expected.size);
    assert.deepEqual(sortedPaths(found), [...expected.keys()].sort());
    for (const file of found) {
      const want = expected.get(file.relativePath);
      assert.deepEqual({ size: file.size, mtimeMs: file.mtimeMs }, want, file.relativePath);
    }
    assert.equal(batches.length, Math.ceil(expected.size / 250));
    for (const batch of batches.slice(0, -1)) assert.equal(batch.length, 250);
  });

  it('closes its folder handles when the consumer stops early', async () => {
    const root = await newFolder('early');
    for (let i = 0; i < 5; i++) {
      await mkdir(path.join(root, `a${i}`, 'b', 'c'), { recursive: true });
      for (let j = 0; j < 10; j++) await writeFile(path.join(root, `a${i}`, 'b', 'c', `f${j}`), 'x');
    }
    const before = await openDescriptorCount();
    for await (const batch of scanFolder(root, everything, { batchSize: 3 })) {
      assert.equal(batch.length, 3);
      assert.ok((await openDescriptorCount()) > before, 'the scan holds folders open while it runs');
      break;
    }
    assert.equal(await openDescriptorCount(), before);
  });

  it('never follows symbolic links, to files or folders, inside or outside the tree', async () => {
    const root = await newFolder('links');
    const outside = await newFolder('outside');
    await writeFile(path.join(outside, 'secret.txt'), 'outside');
    await mkdir(path.join(outside, 'dir'));
    await writeFile(path.join(outside, 'dir', 'deep.txt'), 'outside');
    await mkdir(path.join(root, 'real'));
    await writeFile(path.join(root, 'real', 'kept.txt'), 'inside');
    await symlink(path.join(outside, 'secret.txt'), path.join(root, 'file-link.txt'));
    await symlink(path.join(outside, 'dir'), path.join(root, 'dir-link'));
    await symlink(path.join(root, 'real'), path.join(root, 'loop'));
    await symlink(path.join(root, 'missing'), path.join(root, 'dangling.txt'));

    const found = (await scanAll(root, everything)).flat();
    assert.deepEqual(sortedPaths(found), ['real/kept.txt']);
  });

  it('skips files and folders that vanish during the scan, silently', async () => {
    const root = await newFolder('vanish');
    for (const folder of ['a', 'b', 'c']) {
      await mkdir(path.join(root, folder));
      for (let i = 0; i < 20; i++) await writeFile(path.join(root, folder, `f${i}`), 'x');
    }
    const errors: string[] = [];
    const seen: ObservedFile[] = [];
    let deleted = false;
    for await (const batch of scanFolder(root, everything, {
      batchSize: 1,
      onError: (p) => errors.push(p),
    })) {
      seen.push(...batch);
      if (!deleted) {
        // The scan has listed part of the first folder: delete everything, listed or not.
        deleted = true;
        for (const folder of ['a', 'b', 'c']) await rm(path.join(root, folder), { recursive: true });
      }
    }
    assert.deepEqual(errors, []);
    assert.equal(
      seen.length,
      1,
      `only the file yielded before the deletion: ${sortedPaths(seen).join(', ')}`,
    );
  });

  it('reports an unreadable subfolder through onError and scans the rest', async (t) => {
    if (process.getuid?.() !== 0) {
      const root = await newFolder('denied');
      await mkdir(path.join(root, 'closed'));
      await writeFile(path.join(root, 'closed', 'hidden.txt'), 'x');
      await writeFile(path.join(root, 'open.txt'), 'x');
      await chmod(path.join(root, 'closed'), 0o000);
      t.after(() => chmod(path.join(root, 'closed'), 0o755));
      const errors: [string, string | undefined][] = [];
      const found = (
        await scanAll(root, everything, {
          onError: (p, error) => errors.push([p, (error as NodeJS.ErrnoException).code]),
        })
      ).flat();
      assert.deepEqual(sortedPaths(found), ['open.txt']);
      assert.deepEqual(errors, [[path.join(root, 'closed'), 'EACCES']]);
      await assert.rejects(scanAll(root, everything), /cannot read .*closed while scanning/);
      return;
    }
    // Root reads every folder: run the same scan as an unprivileged user in a child process.
    const root = await newFolder('denied');
    await chmod(base, 0o755);
    await mkdir(path.join(root, 'closed'));
    await writeFile(path.join(root, 'closed', 'hidden.txt'), 'x');
    await writeFile(path.join(root, 'open.txt'), 'x');
    await chmod(path.join(root, 'closed'), 0o000);
    const scanner = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/watch/scanner.ts');
    const script = `
      const { scanFolder } = await import(${JSON.stringify(scanner)});
      const errors = [];
      const files = [];
      for await (const batch of scanFolder(${JSON.stringify(root)}, () => true, { onError: (p, e) => errors.push([p, e.code]) })) files.push(...batch.map((f) => f.relativePath));
      console.log(JSON.stringify({ files, errors }));`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
      cwd: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..'),
      env: { ...process.env, TSX_TSCONFIG_PATH: undefined, HOME: base },
    });
    if (child.status !== 0 && /EACCES|permission denied/i.test(child.stderr) && !child.stdout) {
      t.skip(`cannot run an unprivileged child here: ${child.stderr.split('\n')[0]}`);
      return;
    }
    assert.equal(child.status, 0, child.stderr);
    assert.deepEqual(JSON.parse(child.stdout), {
      files: ['open.txt'],
      errors: [[path.join(root, 'closed'), 'EACCES']],
    });
  });

  it('throws a clear error when the folder is missing or not a folder', async () => {
    const missing = path.join(base, 'no-such-folder');
    await assert.rejects(scanAll(missing, everything), (error: unknown) => {
      assert.ok(error instanceof FolderUnreadableError);
      assert.equal(error.code, 'ENOENT');
      assert.equal(error.message, `source folder ${missing} does not exist`);
      return true;
    });
    const root = await newFolder('file-root');
    await writeFile(path.join(root, 'plain'), 'x');
    await assert.rejects(
      scanAll(path.join(root, 'plain'), everything),
      /source folder .*plain is not a folder/,
    );
  });

  it('stops when its signal is aborted', async () => {
    const root = await newFolder('abort');
    for (let i = 0; i < 10; i++) await writeFile(path.join(root, `f${i}`), 'x');
    const controller = new AbortController();
    const seen: ObservedFile[] = [];
    await assert.rejects(
      (async () => {
        for await (const batch of scanFolder(root, everything, { batchSize: 2, signal: controller.signal })) {
          seen.push(...batch);
          controller.abort();
        }
      })(),
      { name: 'AbortError' },
    );
    assert.equal(seen.length, 2);
  });
});

/** A watch that records what it reports; closed after each test. */
class Recorder {
  readonly batches: ObservedFile[][] = [];
  readonly errors: Error[] = [];
  watch: FolderWatch | undefined;

  latest(relativePath: string): ObservedFile | undefined {
    return this.batches
      .flat()
      .filter((file) => file.relativePath === relativePath)
      .at(-1);
  }

  paths(): Set<string> {
    return new Set(this.batches.flat().map((file) => file.relativePath));
  }

  async waitForFile(
    relativePath: string,
    accept: (file: ObservedFile) => boolean = () => true,
  ): Promise<ObservedFile> {
    return waitFor(
      () => {
        const file = this.latest(relativePath);
        return file !== undefined && accept(file) ? file : undefined;
      },
      { message: `the watch to report ${relativePath}` },
    );
  }
}

const open: Recorder[] = [];
afterEach(async () => {
  for (const recorder of open.splice(0)) await recorder.watch?.close();
});

async function watch(root: string, filter: PathFilter = everything, coalesceMs = 50): Promise<Recorder> {
  const recorder = new Recorder();
  open.push(recorder);
  recorder.watch = await watchFolder(
    root,
    filter,
    { filesChanged: (files) => recorder.batches.push(files), error: (error) => recorder.errors.push(error) },
    { coalesceMs },
  );
  return recorder;
}

describe('watchFolder', () => {
  it('reports a new file with its size and modification time', async () => {
    const root = await newFolder('w-new');
    const recorder = await watch(root);
    await writeFile(path.join(root, 'a.txt'), 'hello');
    const file = await recorder.waitForFile('a.txt');
    assert.equal(file.size, 5);
    assert.ok(Math.abs(file.mtimeMs - Date.now()) < 60_000);
    assert.deepEqual(recorder.errors, []);
  });

  it('reports a changed file with its new size', async () => {
    const root = await newFolder('w-change');
    await writeFile(path.join(root, 'log.txt'), 'one');
    const recorder = await watch(root);
    await writeFile(path.join(root, 'log.txt'), 'one and two', { flag: 'w' });
    const file = await recorder.waitForFile('log.txt', (f) => f.size === 11);
    assert.equal(file.size, 11);
  });

  it('reports files in a newly created nested folder, and later writes deep inside it', async () => {
    const root = await newFolder('w-nested');
    const recorder = await watch(root);
    // Synchronous, like `mkdir -p a/b/c && echo 1 > a/b/c/first.txt`: faster than inotify watches are added.
    mkdirSync(path.join(root, 'a', 'b', 'c'), { recursive: true });
    writeFileSync(path.join(root, 'a', 'b', 'c', 'first.txt'), '1');
    await recorder.waitForFile('a/b/c/first.txt');
    // c was created before any watch on b existed: only a subscription of its own sees this write.
    await writeFile(path.join(root, 'a', 'b', 'c', 'later.txt'), '22');
    assert.equal((await recorder.waitForFile('a/b/c/later.txt')).size, 2);
    assert.deepEqual(recorder.errors, []);
  });

  it('reports a tree moved in from elsewhere, and later writes inside it', async () => {
    const root = await newFolder('w-moved');
    const staging = await newFolder('staging');
    await mkdir(path.join(staging, 'tree', 'x', 'y'), { recursive: true });
    await writeFile(path.join(staging, 'tree', 'x', 'y', 'old.csv'), 'abc');
    const recorder = await watch(root, compilePattern('*.csv'));
    await rename(path.join(staging, 'tree'), path.join(root, 'tree'));
    await recorder.waitForFile('tree/x/y/old.csv');
    await writeFile(path.join(root, 'tree', 'x', 'y', 'new.csv'), 'abcd');
    assert.equal((await recorder.waitForFile('tree/x/y/new.csv')).size, 4);
  });

  it('coalesces a burst of 1,000 writes into a few batches', async () => {
    const root = await newFolder('w-burst');
    const recorder = await watch(root, everything, 100);
    for (let i = 0; i < 1000; i++) await writeFile(path.join(root, `f${i}.dat`), `${i}`);
    // A deadline for a loaded machine (CI runs three test files at once); a passing run takes well under a second.
    await waitFor(() => recorder.paths().size === 1000, {
      timeoutMs: 20_000,
      message: '1,000 distinct files',
    }).catch((error: Error) => {
      throw new Error(
        `${error.message}: ${recorder.paths().size} seen, errors: ${recorder.errors.join('; ')}`,
      );
    });
    assert.ok(recorder.batches.length <= 10, `${recorder.batches.length} batches`);
    for (const batch of recorder.batches) assert.ok(batch.length <= 500, `a batch of ${batch.length}`);
    const reported = recorder.batches.flat().length;
    assert.ok(reported < 1100, `${reported} reports for 1,000 files: events were not coalesced`);
  });

  it('never reports folders, links, deletions or files the filter refuses', async () => {
    const root = await newFolder('w-noise');
    const outside = await newFolder('w-outside');
    await writeFile(path.join(outside, 'o.txt'), 'outside');
    await writeFile(path.join(root, 'doomed.txt'), 'x');
    const recorder = await watch(root, compilePattern('*.txt'));

    await mkdir(path.join(root, 'folder.txt'));
    await writeFile(path.join(root, 'skip.csv'), 'x');
    await writeFile(path.join(root, 'folder.txt', 'skip.bin'), 'x');
    await symlink(path.join(outside, 'o.txt'), path.join(root, 'link.txt'));
    await symlink(outside, path.join(root, 'dir-link'));
    await writeFile(path.join(outside, 'o2.txt'), 'outside, after the link');
    await rm(path.join(root, 'doomed.txt'));
    // Reported after everything above: once it is seen, the rest has been examined too.
    await writeFile(path.join(root, 'sentinel.txt'), 'x');
    await recorder.waitForFile('sentinel.txt');
    assert.deepEqual([...recorder.paths()], ['sentinel.txt']);
  });

  it("reports a file whose name starts with '..' (it is inside the folder)", async () => {
    const root = await newFolder('w-dots');
    const recorder = await watch(root);
    await writeFile(path.join(root, '..data'), 'x');
    await recorder.waitForFile('..data');
  });

  it('stops reporting after close()', async () => {
    const root = await newFolder('w-close');
    const recorder = await watch(root);
    await writeFile(path.join(root, 'before.txt'), 'x');
    await recorder.waitForFile('before.txt');
    await writeFile(path.join(root, 'in-flight.txt'), 'x');
    await recorder.watch?.close();
    const reportedAtClose = recorder.batches.length;

    // A second watch on the same folder shows when the first one would have seen the next write.
    const witness = await watch(root);
    await writeFile(path.join(root, 'after.txt'), 'x');
    await witness.waitForFile('after.txt');
    await new Promise((resolve) => setTimeout(resolve, 150)); // longer than the closed watch's window
    assert.equal(recorder.batches.length, reportedAtClose);
    assert.deepEqual(recorder.errors, []);
  });

  it('reports that the watch is lost when its folder is deleted', async () => {
    const root = await newFolder('w-gone');
    const recorder = await watch(root);
    await rm(root, { recursive: true });
    const error = await waitFor(() => recorder.errors[0], { message: 'an error' });
    assert.ok(error instanceof MissedChangesError);
    assert.equal(error.watchLost, true);
    assert.match(error.message, /was deleted or moved/);
  });

  it('reports that the watch is lost when its folder is moved away', async () => {
    const root = await newFolder('w-moved-away');
    const recorder = await watch(root);
    await rename(root, `${root}-elsewhere`);
    const error = await waitFor(() => recorder.errors[0], { message: 'an error' });
    assert.ok(error instanceof MissedChangesError);
    assert.equal(error.watchLost, true);
  });

  it('watches a folder made again where one was deleted, and one named like its parent', async () => {
    const root = await newFolder('w-again');
    await mkdir(path.join(root, 'run', 'lane'), { recursive: true });
    const recorder = await watch(root);
    await rm(path.join(root, 'run'), { recursive: true });
    await mkdir(path.join(root, 'run', 'run'), { recursive: true }); // a child with its parent's name
    await writeFile(path.join(root, 'run', 'run', 'a.txt'), 'a');
    await recorder.waitForFile('run/run/a.txt');
    await writeFile(path.join(root, 'run', 'b.txt'), 'bb');
    await writeFile(path.join(root, 'run', 'run', 'c.txt'), 'ccc');
    assert.equal((await recorder.waitForFile('run/b.txt')).size, 2);
    assert.equal((await recorder.waitForFile('run/run/c.txt')).size, 3);
    assert.deepEqual(recorder.errors, []);
  });

  it('rejects when the folder does not exist', async () => {
    await assert.rejects(
      watchFolder(path.join(base, 'nowhere'), everything, {
        filesChanged: () => undefined,
        error: () => undefined,
      }),
      (error: unknown) => error instanceof FolderUnreadableError && /does not exist/.test(error.message),
    );
  });
});

describe('FolderSubscriptions', () => {
  it('holds one watch per folder, and lets go of those of a folder deleted or moved away', async () => {
    const root = await newFolder('s-count');
    for (const lane of ['l1', 'l2', 'l3']) await mkdir(path.join(root, 'run', lane), { recursive: true });
    await mkdir(path.join(root, 'other'));
    await writeFile(path.join(root, 'run', 'l1', 'a.bin'), 'a');
    const gone: string[] = [];
    const errors: Error[] = [];
    const subscriptions = await FolderSubscriptions.open(root, {
      events: () => undefined,
      folderGone: (folder) => gone.push(folder),
      error: (error) => errors.push(error),
    });
    after(() => subscriptions.close());
    assert.equal(subscriptions.watchedFolders, 6, 'the root, other, run and its three lanes');
    await rm(path.join(root, 'run', 'l3'), { recursive: true });
    await waitFor(() => subscriptions.watchedFolders === 5, { message: 'l3 let go' });
    await rename(path.join(root, 'run'), path.join(root, 'run-moved'));
    await waitFor(() => subscriptions.watchedFolders === 2, { message: 'run and its lanes let go' });
    assert.ok(gone.includes(path.join(root, 'run')), gone.join(', '));
    await subscriptions.watchNewFolder(path.join(root, 'run-moved'));
    assert.equal(subscriptions.watchedFolders, 5, 'the moved tree watched at its new path');
    assert.deepEqual(errors, []);
  });
});

describe('ChangeBuffer', () => {
  it('hands over early when full and drops, once reported, what arrives while a hand-over runs', async () => {
    const handedOver: string[][] = [];
    let release: () => void = () => undefined;
    let overflows = 0;
    const buffer = new ChangeBuffer({
      windowMs: 10_000, // only the bound can trigger the first hand-over
      maxPending: 3,
      flush: (changes) => {
        handedOver.push([...changes.keys()]);
        return new Promise<void>((resolve) => (release = resolve));
      },
      overflowed: () => overflows++,
      failed: (error) => assert.fail(asMessage(error)),
    });
    for (const name of ['a', 'b', 'a', 'c']) buffer.add(name, false);
    assert.deepEqual(handedOver, []);
    buffer.add('d', false); // the fourth distinct path: a, b, c go at once
    assert.deepEqual(handedOver, [['a', 'b', 'c']]);
    for (const name of ['e', 'f', 'g', 'h', 'i']) buffer.add(name, false);
    assert.equal(overflows, 1);
    release();
    await waitFor(() => handedOver.length === 2, { message: 'the second hand-over' });
    assert.deepEqual(handedOver[1], ['d', 'e', 'f']);
    release();
    await buffer.close();
  });

  it('keeps the fact that a path was created when later events only update it', async () => {
    let received: Map<string, boolean> | undefined;
    const buffer = new ChangeBuffer({
      windowMs: 5,
      maxPending: 100,
      flush: async (changes) => void (received = changes),
      overflowed: () => assert.fail('no overflow expected'),
      failed: (error) => assert.fail(asMessage(error)),
    });
    buffer.add('x', true);
    buffer.add('x', false);
    buffer.add('y', false);
    const changes = await waitFor(() => received, { message: 'a hand-over' });
    assert.deepEqual(
      [...changes],
      [
        ['x', true],
        ['y', false],
      ],
    );
    await buffer.close();
  });
});

function asMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
