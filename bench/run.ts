// Upload benchmark: prints figures, never passes or fails.
//
//   npm run bench                   # every scenario (it builds the service first)
//   npm run bench -- small latency  # some of: large, small, latency, growing, scale, sdk, observe, existing, fast
//
//   large    one file of 1 GiB: MiB/s, CPU s per GiB                       (service, rclone, aws)
//   small    2,000 files of 16 KiB in 20 folders: files/s, CPU s, peak RSS  (service, rclone, aws)
//            on Swift, then the same to the in-memory endpoint and 30 ms away from it (fast, below)
//   latency  files created one a second: close → object in S3, p50/p99      (service; see latency.ts)
//   growing  a file written at a steady rate (see growing.ts)               (service, rclone)
//   scale    200,000 files of 1 KiB: tasks known, memory, idle CPU, rescan  (service; see scale.ts)
//   sdk      the S3 SDK's CPU per PutObject, the service's client and the SDK's defaults (sdk.ts)
//   observe  small and large with metrics, events and the dashboard off, then on: CPU of each (observe.ts)
//   existing 10,000 files already in the bucket, uploaded again: seconds and requests   (service, aws sync, rclone)
//   claims   100,000 ready tasks on PostgreSQL, claimed by 1, 2 and 3 processes at once: tasks/s, claim
//            latency, CPU of each and of PostgreSQL (claims.ts; the machine's PostgreSQL)
//   instances 2,000 files of 16 KiB to the in-memory endpoint by 1, 2 and 3 instances on one PostgreSQL
//            schema: files/s, CPU of each instance, of PostgreSQL and of the endpoint (instances.ts)
//   arrival  a run folder with its marker last, a manifest and a notification, beside the same without:
//            seconds, the marker's delay after the last data file; a manifest of 1,000,000 files from
//            SQLite and PostgreSQL: seconds, memory (arrival.ts, manifest.ts)
//   fast     small's second part alone: 2,000 files of 16 KiB to the in-memory endpoint, 8 in flight for
//            all, then 30 ms away, rclone with --transfers 32: files/s, CPU ms per file, requests (fast.ts)
//
//   BENCH_ROUNDS=2                          runs of each tool in large and small, in a rotated order
//   LATENCY_FILES=200                       files in latency (one a second)
//   SCALE_FILES=200000 SCALE_FOLDERS=2000   the tree of scale (smaller for a quick run)
//   BENCH_S3_DIR=DIR                        where the local S3 server keeps its data (default: a temp folder)
//   OBSERVE_MODES=off,on                    observe's modes, of off, metrics, events, on (observe.ts)
//   OBSERVE_SCENARIOS=small,large           observe's uploads
//   OBSERVE_S3=memory                       observe's endpoint: memory (bench/memory-s3.ts) or swift
//   EXISTING_FILES=10000                    files in existing
//   ARRIVAL_FILES=2000 ARRIVAL_MANIFEST_FILES=1000000   arrival's run folder and manifest
//   FAST_FILES=2000 FAST_LATENCY_MS=30      fast's files and the latency of its second part (BENCH_ROUNDS: 1 there)
//
// It starts the local S3 server (or uses S3_TEST_ENDPOINT), runs the compiled service as users do
// (its own process and SQLite file, default settings but where a scenario says), and, when rclone
// and aws-cli v2 are installed, those on the same data against the same server in the same run,
// so that the figures can be read as ratios. The tables are markdown; bench-results.json in the
// current folder holds every figure.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, removeTempDir } from '../test/support/temp-tree.js';
import {
  GROWING,
  growingNote,
  growingTable,
  growingTools,
  runGrowing,
  type GrowingFigure,
} from './growing.js';
import { latencyTable, LATENCY, runLatency, type LatencyResult } from './latency.js';
import {
  MODES,
  observeTable,
  runObserve,
  type Mode,
  type ObserveEndpoint,
  type ObserveResult,
} from './observe.js';
import { EXISTING, existingTable, runExisting, type ExistingResult } from './existing.js';
import { describeFastRuns, FAST, fastTable, runFast, type FastResult } from './fast.js';
import { CLAIMS, claimsTable, runClaims, type ClaimsResult } from './claims.js';
import { INSTANCES, instancesTable, runInstances, type InstancesResult } from './instances.js';
import { ARRIVAL, arrivalTable, runArrival, type ArrivalResult } from './arrival.js';
import { describeMachine, machineLine, type Machine } from './machine.js';
import { findPeers, serviceDefaults, type Peer } from './peers.js';
import { startBenchS3Server, type BenchS3Server } from './s3-server.js';
import { runScale, scaleTable, SCALE, type ScaleResult } from './scale.js';
import { runSdk, SDK, sdkTable, type SdkFigure } from './sdk.js';
import { assertServiceBuilt } from './tools.js';
import {
  describeRuns,
  LARGE,
  runTransfer,
  SMALL,
  transferTable,
  type TransferResult,
  type TransferScenario,
} from './transfer.js';

const SCENARIOS = [
  'large',
  'small',
  'latency',
  'growing',
  'sdk',
  'scale',
  'observe',
  'existing',
  'fast',
  'claims',
  'instances',
  'arrival',
] as const;
type ScenarioName = (typeof SCENARIOS)[number];

interface Results {
  machine: Machine;
  settings: Record<string, unknown>;
  scenarios: {
    large?: TransferResult;
    small?: TransferResult;
    latency?: LatencyResult;
    growing?: { note: string; figures: GrowingFigure[] };
    scale?: ScaleResult;
    sdk?: SdkFigure[];
    observe?: ObserveResult;
    existing?: ExistingResult;
    fast?: FastResult;
    claims?: ClaimsResult;
    instances?: InstancesResult;
    arrival?: ArrivalResult;
  };
  /** one markdown table per scenario, as printed */
  tables: Record<string, string>;
  /** scenarios that failed, with why: the others still run */
  failures: Record<string, string>;
}

interface Context {
  work: string;
  server: BenchS3Server;
  peers: Peer[];
  rclone: Peer | undefined;
  rounds: number;
  output: string;
  results: Results;
}

function chosenScenarios(args: string[]): ScenarioName[] {
  const unknown = args.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
  if (unknown.length > 0)
    throw new Error(`unknown scenario ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')}`);
  const chosen = args.length === 0 ? [...SCENARIOS] : SCENARIOS.filter((name) => args.includes(name));
  // small runs fast as its second part.
  return chosen.includes('small') ? chosen.filter((name) => name !== 'fast') : chosen;
}

/** Prints a scenario's table with its title, keeps it, and writes every result so far. */
async function report(
  context: Context,
  name: ScenarioName,
  title: string,
  table: string,
  note = '',
): Promise<void> {
  const text = [`### ${name}: ${title}`, '', ...(note ? [note, ''] : []), table].join('\n');
  console.log(`\n${text}\n`);
  context.results.tables[name] = text;
  await writeFile(context.output, JSON.stringify(context.results, null, 2));
}

async function runTransferScenario(
  context: Context,
  scenario: TransferScenario,
  rotation: number,
): Promise<void> {
  console.log(`\n${scenario.name}: ${scenario.describe}`);
  const result = await runTransfer(scenario, { ...context, rotation });
  context.results.scenarios[scenario.name] = result;
  await report(
    context,
    scenario.name,
    `${scenario.describe}, SETTLE_SECONDS=0`,
    transferTable(result),
    `${describeRuns(result)}. Ratios are service ÷ tool of the medians. Service: POST /uploads until ` +
      'every file is completed, CPU from /proc; tools: the whole command under /usr/bin/time.',
  );
}

/** Small files where the client's cost shows: the in-memory endpoint, then the same 30 ms away. */
async function runFastScenario(context: Context, index: number): Promise<void> {
  console.log(`\nfast: ${FAST.describe}, then ${FAST.latencyMs} ms away; ${FAST.rounds} round(s)`);
  const result = await runFast(context.work, context.peers, index);
  context.results.scenarios.fast = result;
  await report(
    context,
    'fast',
    result.describe,
    fastTable(result),
    `${describeFastRuns(result)}. Ratios are service ÷ tool of the medians. The endpoint is ` +
      'bench/memory-s3.ts in the benchmark process (Content-MD5 checked, no bytes kept). Service: ' +
      'POST /uploads until every file is completed, CPU from /proc; tools: the whole command under ' +
      '/usr/bin/time, start-up included.',
  );
}

async function runScenario(context: Context, name: ScenarioName, index: number): Promise<void> {
  switch (name) {
    case 'large':
      return runTransferScenario(context, LARGE, index);
    case 'small':
      await runTransferScenario(context, SMALL, index);
      return runFastScenario(context, index);
    case 'latency': {
      console.log(`\nlatency: ${LATENCY.files} files, one a second (about ${LATENCY.files} s)`);
      const result = await runLatency(context.work, context.server, context.peers);
      context.results.scenarios.latency = result;
      return report(
        context,
        name,
        `${result.describe}, SETTLE_SECONDS=${result.settleSeconds}`,
        latencyTable(result),
        'Close → object: HEAD on the S3 server every ~20 ms per file not yet seen, timed at the answer. ' +
          "rclone and aws: '-', not applicable: they have no watch mode, so the figure would measure " +
          'when they are run, not the tool.',
      );
    }
    case 'growing': {
      console.log(`\ngrowing: ${GROWING.describe}; SETTLE_SECONDS=${GROWING.settleSeconds}`);
      const figures: GrowingFigure[] = [];
      for (const tool of growingTools(context.work, context.rclone)) {
        figures.push(await runGrowing(tool, context.work, context.server));
        console.log(JSON.stringify(figures.at(-1)));
      }
      context.results.scenarios.growing = { note: growingNote(), figures };
      return report(context, name, GROWING.describe, growingTable(figures), growingNote());
    }
    case 'sdk': {
      console.log(`\nsdk: ${SDK.describe}`);
      const figures = await runSdk();
      context.results.scenarios.sdk = figures;
      return report(
        context,
        name,
        SDK.describe,
        sdkTable(figures),
        'CPU of this process per request, user + system, two runs each (range). Compare with the ' +
          "service's CPU per file in `small`: the rest is reading the file, hashing, the database and the API.",
      );
    }
    case 'observe': {
      const scenarios = observeScenarios();
      console.log(
        `\nobserve: ${scenarios.map((scenario) => scenario.describe).join(' and ')}, watched and not`,
      );
      const result = await runObserve(
        scenarios,
        context.work,
        context.rounds,
        observeModes(),
        observeEndpoint(),
      );
      context.results.scenarios.observe = result;
      return report(
        context,
        name,
        'what metrics, the event stream and the dashboard cost the service',
        observeTable(result),
        `${context.rounds} rounds, the modes in turn, to ${result.endpoint}. Off: ` +
          'METRICS_ENABLED=false and no client. metrics: the defaults, /metrics scraped every second. events: ' +
          "and a client reading /events. on: and the dashboard open in chromium. The CPU is the service's " +
          'own, from /proc, from POST /uploads until every file is completed, after a warm-up upload.',
      );
    }
    case 'existing': {
      console.log(`\nexisting: ${EXISTING.describe}`);
      const result = await runExisting(context.work, context.server, context.peers);
      context.results.scenarios.existing = result;
      return report(
        context,
        name,
        result.describe,
        existingTable(result),
        `The bucket filled first by the service (${result.fillSeconds.toFixed(1)} s), then each tool on the same ` +
          'folder: the service as a new one-shot upload (if_exists skip_identical), `aws s3 sync`, `rclone copy`, ' +
          "at their defaults. Requests counted at a proxy in front of the S3 server; CPU: the tool's own.",
      );
    }
    case 'fast':
      return runFastScenario(context, index);
    case 'instances': {
      console.log(`\ninstances: ${INSTANCES.describe}`);
      const result = await runInstances(context.work);
      context.results.scenarios.instances = result;
      return report(
        context,
        name,
        result.describe,
        instancesTable(result),
        'Each instance at its defaults but SETTLE_SECONDS=0, DATABASE_URL on a fresh schema; the upload ' +
          'created on the first. From POST /uploads until every file is completed; CPU from /proc. ' +
          'Everything shares the two cores of this machine: the instances, PostgreSQL and the endpoint.',
      );
    }
    case 'arrival': {
      console.log(`\narrival: ${ARRIVAL.describe}; ${ARRIVAL.rounds} rounds`);
      const result = await runArrival(context.work);
      context.results.scenarios.arrival = result;
      return report(
        context,
        name,
        result.describe,
        arrivalTable(result),
        'The built service at its defaults but SETTLE_SECONDS=0, one-shot, to the in-memory endpoint; ' +
          "with and without complete_markers, manifest and notify_url, in turn. Delays by the endpoint's " +
          "clock (when it stored each object) and a local receiver's. The manifest table: writeManifest in " +
          "a process of its own, with the service's Node flags and --max-old-space-size=64; its resident " +
          'memory from /proc, once its store was open and at its peak.',
      );
    }
    case 'claims': {
      console.log(`\nclaims: ${CLAIMS.describe}`);
      const result = await runClaims();
      context.results.scenarios.claims = result;
      return report(
        context,
        name,
        result.describe,
        claimsTable(result),
        'Each process is a store as an instance of the service holds one (its own pool of 2 connections), ' +
          'claiming 8 tasks at a time in a loop and completing each, for the same number of seconds. ' +
          'Tasks claimed twice: task ids that two processes both got (must be 0).',
      );
    }
    case 'scale': {
      console.log(`\nscale: ${SCALE.files} files in ${SCALE.folders} folders`);
      const result = await runScale(context.work, context.server);
      context.results.scenarios.scale = result;
      return report(
        context,
        name,
        result.describe,
        scaleTable(result),
        'Service only: rclone and aws have no watch mode. Targets are printed, not asserted.',
      );
    }
  }
}

/** A comma-separated list from the environment, each item one of `allowed`. */
function listSetting<T extends string>(name: string, allowed: readonly T[], fallback: readonly T[]): T[] {
  const value = process.env[name];
  if (value === undefined || value === '') return [...fallback];
  const items = value.split(',').map((item) => item.trim());
  const unknown = items.filter((item) => !(allowed as readonly string[]).includes(item));
  if (unknown.length > 0)
    throw new Error(`${name}: unknown ${unknown.join(', ')} (known: ${allowed.join(', ')})`);
  return items as T[];
}

function observeModes(): Mode[] {
  return listSetting('OBSERVE_MODES', MODES, ['off', 'on']);
}

function observeEndpoint(): ObserveEndpoint {
  return listSetting('OBSERVE_S3', ['memory', 'swift'] as const, ['memory'])[0]!;
}

function observeScenarios(): TransferScenario[] {
  const byName = { small: SMALL, large: LARGE };
  return listSetting('OBSERVE_SCENARIOS', ['small', 'large'] as const, ['small', 'large']).map(
    (name) => byName[name],
  );
}

async function main(): Promise<void> {
  const chosen = chosenScenarios(process.argv.slice(2));
  assertServiceBuilt();
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'; // a notice, not a figure
  const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
  const server = await startBenchS3Server();
  const work = await makeTempDir('bench');
  try {
    const found = await findPeers(work);
    const peers = [found.rclone, found.aws].filter((peer): peer is Peer => peer !== undefined);
    const machine = describeMachine(server.describe, [...peers.map((peer) => peer.name), ...found.missing]);
    const defaults = serviceDefaults();
    const context: Context = {
      work,
      server,
      peers,
      rclone: found.rclone,
      rounds,
      output: path.join(process.cwd(), 'bench-results.json'),
      results: {
        machine,
        settings: { rounds, serviceDefaults: defaults },
        scenarios: {},
        tables: {},
        failures: {},
      },
    };
    console.log(machineLine(machine));
    console.log(
      `peers get the service's defaults: ${defaults.files} files at once, ${defaults.partsInFlight} parts in flight ` +
        `(aws: ${defaults.files} requests in flight in all), ${defaults.partMiB} MiB parts from ${defaults.thresholdMiB} MiB`,
    );
    // Each scenario starts its rotation one tool further, so no tool always runs first.
    for (const [index, name] of chosen.entries()) {
      try {
        await runScenario(context, name, index);
      } catch (error) {
        console.error(`${name} failed:`, error);
        context.results.failures[name] = error instanceof Error ? error.message : String(error);
        await writeFile(context.output, JSON.stringify(context.results, null, 2));
      }
    }
    console.log(`\n${machineLine(machine)}\n`);
    for (const table of Object.values(context.results.tables)) console.log(`${table}\n`);
    for (const [name, why] of Object.entries(context.results.failures))
      console.log(`${name}: FAILED: ${why}`);
    console.log(`written to ${context.output}`);
    if (Object.keys(context.results.failures).length > 0) process.exitCode = 1;
  } finally {
    await removeTempDir(work);
    await server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
