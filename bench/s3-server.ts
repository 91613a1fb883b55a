// The local S3 server for benchmarks: the tests' own Swift start-up, or S3_TEST_ENDPOINT when set.
//
//   BENCH_S3_DIR=/some/dir   where Swift keeps its config, data and logs (default: a new temp folder)
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/support/s3-server.sh');

export interface BenchS3Server {
  endpoint: string;
  /** e.g. `Swift 2.30.1 (s3api) on loopback`, or the external endpoint */
  describe: string;
  /** Process ids of the server, for its CPU figures; empty for an external server. */
  pids: number[];
  /** Started here: its data goes when it stops, so buckets need no emptying. */
  owned: boolean;
  stop(): Promise<void>;
}

export async function startBenchS3Server(): Promise<BenchS3Server> {
  if (process.env.S3_TEST_ENDPOINT) {
    const endpoint = process.env.S3_TEST_ENDPOINT;
    return { endpoint, describe: `external S3 at ${endpoint}`, pids: [], owned: false, stop: async () => {} };
  }
  const dir = process.env.BENCH_S3_DIR;
  const child: ChildProcess = spawn('bash', [script, ...(dir ? [dir] : [])], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
    // No Swift left behind if the benchmark is killed.
    // memcached: Swift's account and container cache, as in production (small PUTs ~1.8x faster).
    env: { ...process.env, S3_SERVER_WATCH_PID: String(process.pid), S3_SERVER_MEMCACHED: '1' },
  });
  const variables: Record<string, string> = {};
  const readyLine = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const assignment = /^(S3_[A-Z_]+)=(.*)$/.exec(line);
      if (assignment?.[1] && assignment[2] !== undefined) variables[assignment[1]] = assignment[2];
      else if (line.startsWith('READY')) resolve(line);
    });
    child.once('exit', (code) => reject(new Error(`the S3 server exited with ${code} before it was ready`)));
  });
  Object.assign(process.env, variables);
  const pids = (/pids ([\d ]+)/.exec(readyLine)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  const version = /^READY (.*?) pids/.exec(readyLine)?.[1] ?? 'Swift';
  return {
    endpoint: variables.S3_TEST_ENDPOINT ?? '',
    describe: `${version} on loopback, ${pids.length} single-process servers (workers = 0) and a memcached`,
    pids,
    owned: true,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
