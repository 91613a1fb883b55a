// Profiles the small-file path: the built service, under `node --cpu-prof`, uploads 2,000 files of
// 16 KiB to the in-memory endpoint (bench/memory-s3.ts), then the profile is read by part of the
// code (bench/cpu-profile.ts). Prints the service's CPU per file from /proc beside it, since the
// profiler adds its own cost.
//
//   npm run build && node --import tsx bench/profile-small.ts
//
//   PROFILE_FILES=2000       files of 16 KiB
//   PROFILE_ENV='MAX_CONCURRENT_FILES=8 LOG_LEVEL=info'   settings given to the service
//   PROFILE_OUT=FILE         keeps the profile there (for Chrome's DevTools or speedscope)
//   PROFILE_IDLE_SECONDS=60  then profiles the service idle, watching the uploaded folder
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { waitFor } from '../test/support/poll.js';
import { api, startService } from '../test/support/service-process.js';
import { makeTempDir, removeTempDir, writeRandomFile } from '../test/support/temp-tree.js';
import { analyzeProfile } from './cpu-profile.js';
import { MemoryS3 } from './memory-s3.js';
import { cpuSeconds } from './process-stats.js';
import { assertServiceBuilt, createUpload } from './tools.js';

const FILES = Number(process.env.PROFILE_FILES ?? 2000);
const SETTINGS = Object.fromEntries(
  (process.env.PROFILE_ENV ?? 'MAX_CONCURRENT_FILES=8').split(/\s+/).flatMap((pair) => {
    const [name, value] = pair.split('=');
    return name && value !== undefined ? [[name, value]] : [];
  }),
);

async function main(): Promise<void> {
  assertServiceBuilt();
  // The in-memory endpoint checks no signature: any keys do.
  process.env.S3_TEST_ENDPOINT ??= 'http://127.0.0.1:1';
  process.env.S3_TEST_ACCESS_KEY_ID ??= 'profile';
  process.env.S3_TEST_SECRET_ACCESS_KEY ??= 'profile';
  const work = await makeTempDir('bench-profile');
  const memory = new MemoryS3();
  const endpoint = await memory.start();
  try {
    const folder = path.join(work, 'small');
    for (let i = 0; i < FILES; i++) {
      const dir = path.join(folder, `d${i % 20}`);
      if (i < 20) await mkdir(dir, { recursive: true });
      await writeRandomFile(path.join(dir, `f${i}.bin`), 16 * 1024);
    }
    const profiles = path.join(work, 'profiles');
    const service = await startService({
      databaseFile: path.join(work, 'profile.db'),
      built: true,
      serviceDefaults: true,
      s3Endpoint: endpoint,
      env: { SETTLE_SECONDS: '0', ...SETTINGS },
      // --cpu-prof is refused in NODE_OPTIONS: the flag goes on the command line.
      wrapper: ['/bin/sh', '-c', `exec "$0" --cpu-prof --cpu-prof-dir=${profiles} "$@"`],
    });
    memory.createBucket('profile');
    const cpuBefore = await cpuSeconds(service.child.pid!);
    const started = performance.now();
    const requestsBefore = memory.requests;
    const uploadId = await createUpload(service, folder, 'profile');
    await waitFor(
      async () => {
        const got = await api<{ files: { completed: number } }>(service, 'GET', `/uploads/${uploadId}`);
        return got.body.files.completed === FILES;
      },
      { timeoutMs: 10 * 60_000, intervalMs: 250, message: `${FILES} files uploaded` },
    );
    const seconds = (performance.now() - started) / 1000;
    const cpu = (await cpuSeconds(service.child.pid!)) - cpuBefore;
    const idleSeconds = Number(process.env.PROFILE_IDLE_SECONDS ?? 0);
    if (idleSeconds > 0) {
      const idleBefore = await cpuSeconds(service.child.pid!);
      await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
      const idleCpu = (await cpuSeconds(service.child.pid!)) - idleBefore;
      console.log(`idle for ${idleSeconds} s: ${((100 * idleCpu) / idleSeconds).toFixed(2)}% of a core`);
    }
    await service.stop('SIGINT');
    const [profile] = await readdir(profiles);
    if (profile === undefined) throw new Error('the service wrote no profile');
    console.log(
      `${FILES} files in ${seconds.toFixed(2)} s (${(FILES / seconds).toFixed(0)} files/s), ` +
        `${((cpu * 1000) / FILES).toFixed(3)} ms CPU per file (/proc, profiler on), ` +
        `${memory.requests - requestsBefore} requests; settings ${JSON.stringify(SETTINGS)}`,
    );
    await analyzeProfile(path.join(profiles, profile), FILES);
    if (process.env.PROFILE_OUT) await copyFile(path.join(profiles, profile), process.env.PROFILE_OUT);
  } finally {
    await memory.stop();
    await removeTempDir(work);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
