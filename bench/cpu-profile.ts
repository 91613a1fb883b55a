// Where the service's CPU goes, from a profile written by `node --cpu-prof`: self time by part of
// the code (the S3 SDK, SQLite, the file system, logging...), over the window from the first to the
// last sample in src/transfer/ (the uploads, without the start-up), per file when told how many.
//
//   node --import tsx bench/cpu-profile.ts PROFILE.cpuprofile [FILES]
//
// The parts are told by the script's path and the function's name: a rough map, good enough to
// say which part to cut first (docs/performance.md).
import { readFile } from 'node:fs/promises';

interface CallFrame {
  functionName: string;
  url: string;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
  /** Microseconds since the sample before. */
  timeDeltas: number[];
}

/** The first rule whose test matches names the part. */
const PARTS: [string, (frame: CallFrame) => boolean][] = [
  ['idle', (f) => f.functionName === '(idle)'],
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
  ['native, not attributed', (f) => f.functionName === '(program)'],
  ['S3 SDK: signing', (f) => f.url.includes('signature-v4')],
  ['S3 SDK: middleware, HTTP, XML', (f) => /@aws-sdk|@smithy|fast-xml-parser|@aws-crypto/.test(f.url)],
  ['SQLite (the store)', (f) => /better-sqlite3|\/store\//.test(f.url)],
  ['logging', (f) => /pino|sonic-boom|\/logger/.test(f.url)],
  ['metrics', (f) => /prom-client|\/metrics\//.test(f.url)],
  ['HTTP API', (f) => /\/api\/|fastify|find-my-way|ajv|fast-json-stringify/.test(f.url)],
  ['engine: dispatcher, runner, events', (f) => f.url.includes('/engine/')],
  ['transfer: reading, hashing, buffers', (f) => f.url.includes('/transfer/')],
  ['watching and scanning', (f) => /\/watch\//.test(f.url)],
  [
    'file system',
    (f) => /^(open|read|close|fstat|stat|lstat|readlink|realpath)$|FileHandle/.test(f.functionName),
  ],
  ['sockets', (f) => /^(writev|writeUtf8String|writeBuffer|writeString)$/.test(f.functionName)],
  ['crypto (MD5, SHA-256)', (f) => /Hash|^(digest|update)$/.test(f.functionName)],
  ['Node.js: HTTP client', (f) => /_http_|http_agent/.test(f.url)],
];

function partOf(frame: CallFrame): string {
  return PARTS.find(([, test]) => test(frame))?.[0] ?? 'Node.js: other';
}

/** Prints the profile's busy time by part, per file when `files` is given. */
export async function analyzeProfile(file: string, files?: number): Promise<void> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const inTransfer = profile.samples.flatMap((id, index) =>
    frames.get(id)?.url.includes('/transfer/') ? [index] : [],
  );
  const first = inTransfer[0] ?? 0;
  const last = inTransfer.at(-1) ?? profile.samples.length - 1;
  const byPart = new Map<string, number>();
  let windowMicros = 0;
  for (let index = first; index <= last; index++) {
    const frame = frames.get(profile.samples[index]!);
    const micros = profile.timeDeltas[index] ?? 0;
    windowMicros += micros;
    if (frame === undefined) continue;
    const part = partOf(frame);
    byPart.set(part, (byPart.get(part) ?? 0) + micros);
  }
  byPart.delete('idle');
  const busy = [...byPart.values()].reduce((sum, micros) => sum + micros, 0);
  const perFile = (micros: number) => (files === undefined ? '' : ` ${(micros / files).toFixed(0)} µs/file`);
  console.log(
    `window ${(windowMicros / 1e6).toFixed(2)} s, busy ${(busy / 1000).toFixed(0)} ms${perFile(busy)}`,
  );
  for (const [part, micros] of [...byPart].sort((a, b) => b[1] - a[1])) {
    console.log(`${((100 * micros) / busy).toFixed(1).padStart(5)}%${perFile(micros)}  ${part}`);
  }
}

async function main(): Promise<void> {
  const [file, filesArgument] = process.argv.slice(2);
  if (file === undefined) throw new Error('usage: cpu-profile.ts PROFILE.cpuprofile [FILES]');
  await analyzeProfile(file, filesArgument === undefined ? undefined : Number(filesArgument));
}

if (process.argv[1] === import.meta.filename) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
