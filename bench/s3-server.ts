// The local S3 server for benchmarks: the tests' own Swift start-up, or S3_TEST_ENDPOINT when set.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/support/s3-server.sh');

export interface BenchS3Server {
  endpoint: string;
  /** Process ids of the server, for its CPU figures; empty for an external server. */
  pids: number[];
  stop(): Promise<void>;
}

export async function startBenchS3Server(): Promise<BenchS3Server> {
  if (process.env.S3_TEST_ENDPOINT) {
    return { endpoint: process.env.S3_TEST_ENDPOINT, pids: [], stop: async () => undefined };
  }
  const child: ChildProcess = spawn('bash', [script], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
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
  return {
    endpoint: variables.S3_TEST_ENDPOINT ?? '',
    pids,
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
