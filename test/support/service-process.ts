// The service as users run it: a real child process, with its own SQLite file, talking to a real S3
// over HTTP; stopped with a signal or killed with SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { testS3 } from './s3.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServiceProcess {
  baseUrl: string;
  child: ChildProcess;
  /** Every JSON log line the service printed so far (none with LOG_FORMAT=pretty). */
  logs: Record<string, unknown>[];
  /** Every line the service printed on standard output so far, as printed, JSON or pretty. */
  output: string[];
  /** What the service wrote to stderr so far (Node's warnings, a configuration error). */
  stderr: string[];
  /** Sends a signal and waits for the exit; resolves with the exit code (null when killed). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

export interface ServiceOptions {
  databaseFile: string;
  /** Defaults to the test S3 server; a fault proxy's endpoint goes here. */
  s3Endpoint?: string;
  env?: Record<string, string>;
  startTimeoutMs?: number;
  /** A command the service is started through, e.g. ['setpriv', '--inh-caps=-all', '--']. */
  wrapper?: string[];
  /** Runs the compiled service (`dist/main.js`, from `npm run build`) as users do, instead of `src/main.ts`. */
  built?: boolean;
  /**
   * Leaves out the tests' quicker settings (settle, rescan, retry delay, debug logs), so that the
   * service runs at its own defaults; `env` still applies.
   */
  serviceDefaults?: boolean;
  /** Starts it with no S3 settings at all (no endpoint, keys or region), as a newcomer might. */
  withoutS3Settings?: boolean;
}

/** Settings that make tests quick; the service's own defaults are slower on purpose. */
const TEST_SETTINGS: Record<string, string> = {
  SETTLE_SECONDS: '0.3',
  RESCAN_INTERVAL_SECONDS: '2',
  RETRY_BASE_DELAY_MS: '20',
  LOG_LEVEL: 'debug',
};

const running = new Set<ServiceProcess>();

/** The ready line in LOG_FORMAT=pretty: `[time] INFO: service ready address=http://… version=…`. */
const PRETTY_READY = /\] INFO: service ready .*\baddress=(\S+)/;

/** The address the service listens at, when this line of its output says it is ready. */
function readyAddress(line: string, entry: Record<string, unknown> | undefined): string | undefined {
  if (entry === undefined) return PRETTY_READY.exec(line)?.[1];
  return entry.msg === 'service ready' && typeof entry.address === 'string' ? entry.address : undefined;
}

function parsedJson(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The Node flags `npm start` gives the service (package.json), so that the built one runs as users run it. */
export function startNodeFlags(): string[] {
  const manifest = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
    scripts: { start: string };
  };
  const match = /^node (.*)dist\/main\.js$/.exec(manifest.scripts.start);
  if (!match) throw new Error(`package.json's start script is not 'node [flags] dist/main.js'`);
  return match[1]!.split(' ').filter(Boolean);
}

/** Starts `src/main.ts` (or `dist/main.js`) on a free port and resolves once it says it is ready. */
export async function startService(options: ServiceOptions): Promise<ServiceProcess> {
  const s3 = testS3();
  const entry = options.built
    ? [...startNodeFlags(), path.join(repoRoot, 'dist/main.js')]
    : ['--import', 'tsx', path.join(repoRoot, 'src/main.ts')];
  const command = [...(options.wrapper ?? []), process.execPath, ...entry];
  const child = spawn(command[0]!, command.slice(1), {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: `sqlite:${options.databaseFile}`,
      ...(options.withoutS3Settings
        ? {}
        : {
            AWS_ENDPOINT_URL_S3: options.s3Endpoint ?? s3.endpoint,
            AWS_ACCESS_KEY_ID: s3.accessKeyId,
            AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
            AWS_REGION: s3.region,
            S3_FORCE_PATH_STYLE: 'true',
          }),
      ...(options.serviceDefaults ? {} : TEST_SETTINGS),
      // A test never looks for credentials on the network (the EC2 metadata service).
      AWS_EC2_METADATA_DISABLED: 'true',
      ...options.env,
    },
  });
  const logs: Record<string, unknown>[] = [];
  const output: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(`service not ready after ${options.startTimeoutMs ?? 20_000} ms: ${stderr.join('')}`),
        ),
      options.startTimeoutMs ?? 20_000,
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      const entry = parsedJson(line);
      if (entry !== undefined) logs.push(entry);
      const address = readyAddress(line, entry);
      if (address !== undefined) {
        clearTimeout(timer);
        resolve(address);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before it was ready: ${stderr.join('')}`));
    });
  });
  const service: ServiceProcess = {
    baseUrl: '',
    child,
    logs,
    output,
    stderr,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      running.delete(service);
      return code;
    },
    async kill() {
      await service.stop('SIGKILL');
    },
  };
  running.add(service);
  try {
    service.baseUrl = await ready;
  } catch (error) {
    await service.kill();
    throw error;
  }
  return service;
}

/** For an after-each: kills whatever a test left running, so no process outlives its test. */
export async function killAllServices(): Promise<number> {
  const left = [...running];
  await Promise.all(left.map((service) => service.kill()));
  return left.length;
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

export async function api<T = Record<string, unknown>>(
  service: Pick<ServiceProcess, 'baseUrl'>,
  method: string,
  route: string,
  body?: unknown,
): Promise<ApiResponse<T>> {
  const response = await fetch(`${service.baseUrl}${route}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}
