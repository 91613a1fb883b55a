// The `claims` scenario: how fast instances sharing one PostgreSQL queue take tasks from it.
// 100,000 ready tasks of one upload in a fresh schema; then 1, 2 and 3 processes (each a store, as
// an instance of the service holds one) claim from it at once for a while, 8 tasks a claim, as the
// dispatcher asks; each claimed task is completed, as the service would, so the queue moves.
// Prints claims per second (tasks), the latency of one claim call (p50, p99), and each process's
// CPU, beside PostgreSQL's own (its processes, from /proc).
//
//   npm run bench -- claims
//   CLAIMS_TASKS=100000 CLAIMS_SECONDS=10 CLAIMS_INSTANCES=1,2,3 BENCH_POSTGRES_URL=postgres://…
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { percentile } from './statistics.js';
import { fixed, markdownTable } from './table.js';

export const CLAIMS = {
  url: process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  tasks: Number(process.env.CLAIMS_TASKS ?? 100_000),
  seconds: Number(process.env.CLAIMS_SECONDS ?? 10),
  instances: (process.env.CLAIMS_INSTANCES ?? '1,2,3').split(',').map(Number),
  /** Tasks asked for by one claim: what the dispatcher asks for when an eighth of 64 slots is free. */
  limit: 8,
  describe: '',
};
CLAIMS.describe = `${CLAIMS.tasks.toLocaleString('en')} ready tasks on PostgreSQL, ${CLAIMS.limit} a claim, ${CLAIMS.seconds} s each`;

/** What one claiming process measured. */
interface WorkerFigures {
  claims: number;
  tasks: number;
  /** Every task id it claimed: two processes holding one would show as a duplicate. */
  taskIds: number[];
  latenciesMs: number[];
  cpuSeconds: number;
}

export interface ClaimsFigure {
  instances: number;
  tasksPerSecond: number;
  claimsPerSecond: number;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  /** Each process's CPU share of one core while it claimed. */
  cpuPercentEach: number[];
  postgresCpuPercent: number;
  duplicates: number;
}

export interface ClaimsResult {
  describe: string;
  figures: ClaimsFigure[];
}

const UPLOAD = 'bench-claims';

export async function runClaims(): Promise<ClaimsResult> {
  const figures: ClaimsFigure[] = [];
  for (const instances of CLAIMS.instances) {
    const schema = `bench_claims_${randomBytes(4).toString('hex')}`;
    const url = withSchema(CLAIMS.url, schema);
    try {
      await fill(url);
      const postgresBefore = await postgresCpuSeconds();
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: instances }, () => runWorker(url, CLAIMS.seconds)),
      );
      const seconds = (performance.now() - started) / 1000;
      const postgresCpu = (await postgresCpuSeconds()) - postgresBefore;
      const latencies = results.flatMap((result) => result.latenciesMs).sort((a, b) => a - b);
      const tasks = results.reduce((sum, result) => sum + result.tasks, 0);
      figures.push({
        instances,
        tasksPerSecond: tasks / CLAIMS.seconds,
        claimsPerSecond: results.reduce((sum, result) => sum + result.claims, 0) / CLAIMS.seconds,
        latencyP50Ms: percentile(latencies, 50),
        latencyP99Ms: percentile(latencies, 99),
        cpuPercentEach: results.map((result) => (100 * result.cpuSeconds) / CLAIMS.seconds),
        postgresCpuPercent: (100 * postgresCpu) / seconds,
        duplicates: tasks - new Set(results.flatMap((result) => result.taskIds)).size,
      });
      console.log(`claims: ${JSON.stringify(figures.at(-1))}`);
    } finally {
      await admin(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  }
  return { describe: CLAIMS.describe, figures };
}

export function claimsTable(result: ClaimsResult): string {
  return markdownTable(
    [
      'instances',
      'tasks claimed /s',
      'claim calls /s',
      'claim ms p50 / p99',
      'CPU % of a core, each instance',
      'PostgreSQL CPU %',
      'tasks claimed twice',
    ],
    result.figures.map((figure) => [
      String(figure.instances),
      fixed(figure.tasksPerSecond, 0),
      fixed(figure.claimsPerSecond, 0),
      `${fixed(figure.latencyP50Ms, 2)} / ${fixed(figure.latencyP99Ms, 2)}`,
      figure.cpuPercentEach.map((share) => fixed(share, 0)).join(', '),
      fixed(figure.postgresCpuPercent, 0),
      String(figure.duplicates),
    ]),
  );
}

/** A new schema with one active upload and CLAIMS.tasks ready tasks. */
async function fill(url: string): Promise<void> {
  const store = await openPostgresStore(url);
  try {
    const now = Date.now() - 60_000;
    await store.createUpload(
      {
        uploadId: UPLOAD,
        sourceFolder: '/bench',
        destinationBucket: 'b',
        destinationPrefix: '',
        pattern: '**',
      },
      now,
    );
    await store.activateUpload(UPLOAD, now);
    for (let first = 0; first < CLAIMS.tasks; first += 1000) {
      const files = Array.from({ length: Math.min(1000, CLAIMS.tasks - first) }, (_, i) => ({
        relativePath: `d${Math.floor((first + i) / 1000)}/f${first + i}.bin`,
        size: 16_384,
        mtimeMs: now,
        ino: first + i + 1,
        ctimeMs: now,
        observedAt: now,
      }));
      await store.recordObservedFiles(
        UPLOAD,
        files,
        (relativePath) => relativePath,
        () => ({ readyAt: now, settledAt: now }),
        now,
      );
    }
  } finally {
    await store.close();
  }
}

/** One claiming process: this file run as `worker URL SECONDS`. */
function runWorker(url: string, seconds: number): Promise<WorkerFigures> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', script, 'worker', url, String(seconds)], {
    cwd: path.resolve(path.dirname(script), '..'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`a claiming process ended with code ${code}`));
      resolve(JSON.parse(output.trim().split('\n').at(-1)!) as WorkerFigures);
    });
  });
}

async function worker(url: string, seconds: number): Promise<void> {
  const store = await openPostgresStore(url, { poolSize: 2 });
  const figures: WorkerFigures = { claims: 0, tasks: 0, taskIds: [], latenciesMs: [], cpuSeconds: 0 };
  const cpuBefore = process.cpuUsage();
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    const started = performance.now();
    const tasks = await store.claimReadyTasks(Date.now(), CLAIMS.limit);
    figures.latenciesMs.push(performance.now() - started);
    figures.claims += 1;
    figures.tasks += tasks.length;
    for (const task of tasks) figures.taskIds.push(task.taskId);
    if (tasks.length === 0) break;
    await Promise.all(
      tasks.map((task) =>
        store.completeTask(
          task.taskId,
          {
            size: task.size,
            mtimeMs: task.mtimeMs,
            ino: task.ino,
            ctimeMs: task.ctimeMs,
            etag: '"bench"',
            validation: null,
            sha256: null,
          },
          Date.now(),
        ),
      ),
    );
  }
  const cpu = process.cpuUsage(cpuBefore);
  figures.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  await store.close();
  console.log(JSON.stringify(figures));
}

export async function admin<R extends pg.QueryResultRow>(text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: CLAIMS.url });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

export function withSchema(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('schema', schema);
  return parsed.toString();
}

/**
 * CPU seconds of PostgreSQL on the machine: its live processes, and the backends that have ended
 * (their time is added to the server's own when it reaps them: cutime and cstime).
 */
export async function postgresCpuSeconds(): Promise<number> {
  let ticks = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const command = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (command.trim() !== 'postgres') continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // After the command name: utime, stime, cutime and cstime are fields 14 to 17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    for (const index of [11, 12, 13, 14]) ticks += Number(fields[index] ?? 0);
  }
  return ticks / 100;
}

if (process.argv[2] === 'worker') {
  worker(process.argv[3]!, Number(process.argv[4])).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
