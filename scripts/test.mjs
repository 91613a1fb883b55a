// `npm test`: runs the suite with Node's test runner against a local S3 server (OpenStack Swift,
// started by test/support/s3-server.sh) unless S3_TEST_ENDPOINT already points at one.
//
//   npm test                                 every *.test.ts under test/unit, test/integration, test/e2e
//   npm test -- test/unit/a.test.ts test/e2e only these files and folders
//   npm test -- --test-name-pattern=resume   arguments starting with "-" go to `node --test` (use "=")
//
// Only unit tests selected: no S3 server is started. Environment knobs: TEST_CONCURRENCY (test files
// run at once, default 3: many wait on the S3 server, a settle time or a restart, so on two cores a
// third overlaps those waits), TEST_TIMEOUT_MS (per test, default 300000), TEST_RUN_TIMEOUT_MS
// (whole run, default 2400000), S3_SERVER_START_TIMEOUT_MS (default 300000, which covers an apt
// install).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_TEST_DIRS = ['test/unit', 'test/integration', 'test/e2e'];
const UNIT_DIR = 'test/unit';
const SERVER_SCRIPT = 'test/support/s3-server.sh';
const S3_VARIABLES = [
  'S3_TEST_ENDPOINT',
  'S3_TEST_ACCESS_KEY_ID',
  'S3_TEST_SECRET_ACCESS_KEY',
  'S3_TEST_REGION',
];

const settings = {
  concurrency: positiveInteger('TEST_CONCURRENCY', 3),
  testTimeoutMs: positiveInteger('TEST_TIMEOUT_MS', 300_000),
  runTimeoutMs: positiveInteger('TEST_RUN_TIMEOUT_MS', 2_400_000),
  serverStartTimeoutMs: positiveInteger('S3_SERVER_START_TIMEOUT_MS', 300_000),
};

function positiveInteger(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

function log(message) {
  console.error(`[test] ${message}`);
}

// ---- which files

/** Test files under the given files and folders (relative to ROOT), sorted; Node 20's --test has no globs. */
function findTestFiles(paths) {
  const files = new Set();
  const walk = (absolute) => {
    for (const entry of readdirSync(absolute, { withFileTypes: true })) {
      const child = path.join(absolute, entry.name);
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile() && entry.name.endsWith('.test.ts')) files.add(path.relative(ROOT, child));
    }
  };
  for (const given of paths) {
    const absolute = path.resolve(given);
    let stats;
    try {
      stats = statSync(absolute);
    } catch {
      throw new Error(`no such test file or folder: ${given}`);
    }
    if (stats.isDirectory()) walk(absolute);
    else files.add(path.relative(ROOT, absolute));
  }
  return [...files].sort(byLongestFirst);
}

/**
 * The longest files (over 30 s each) start first: `node --test` takes files in the order given, and
 * one of them starting last would run alone at the end while the other slots stand idle.
 */
const LONGEST_FIRST = [
  'test/e2e/torture.test.ts',
  'test/e2e/resilience.test.ts',
  'test/e2e/instances.test.ts',
  'test/e2e/bandwidth.test.ts',
  'test/e2e/events.test.ts',
  'test/e2e/api-load.test.ts',
];

function byLongestFirst(a, b) {
  const rank = (file) => {
    const index = LONGEST_FIRST.indexOf(file.split(path.sep).join('/'));
    return index === -1 ? LONGEST_FIRST.length : index;
  };
  return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0);
}

function isUnitTest(file) {
  return file.split(path.sep).join('/').startsWith(`${UNIT_DIR}/`);
}

// ---- the S3 server

/** Starts s3-server.sh in its own process group (kept in state.server) and resolves once it printed READY. */
async function startS3Server(state) {
  const startedAt = Date.now();
  const child = spawn('bash', [SERVER_SCRIPT], {
    cwd: ROOT,
    detached: true, // its own process group, so that stopS3Server can kill whatever it left
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, S3_SERVER_WATCH_PID: String(process.pid) },
  });
  const server = { child, variables: {}, exited: false, outputTail: [] };
  state.server = server;
  child.once('exit', () => (server.exited = true));
  const remember = (line) => {
    server.outputTail.push(line);
    if (server.outputTail.length > 60) server.outputTail.shift();
  };
  createInterface({ input: child.stderr }).on('line', (line) => {
    remember(line);
    console.error(line);
  });
  const ready = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      remember(line);
      const assignment = /^([A-Z0-9_]+)=(.*)$/.exec(line);
      if (assignment) server.variables[assignment[1]] = assignment[2];
      else if (line.startsWith('READY')) resolve(line);
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`${SERVER_SCRIPT} exited before READY (${signal ?? `exit code ${code}`})`)),
    );
    child.once('error', reject);
  });

  try {
    const readyLine = await withDeadline(
      ready,
      settings.serverStartTimeoutMs,
      `${SERVER_SCRIPT} printed no READY within ${settings.serverStartTimeoutMs} ms`,
    );
    const missing = S3_VARIABLES.filter((name) => !server.variables[name]);
    if (missing.length > 0) throw new Error(`${SERVER_SCRIPT} did not print ${missing.join(', ')}`);
    log(
      `S3 server at ${server.variables.S3_TEST_ENDPOINT} (in ${server.variables.S3_SERVER_DIR}): ${readyLine.replace(/^READY\s*/, '')}`,
    );
    log(`S3 server start-up took ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
    return server;
  } catch (error) {
    await stopS3Server(server);
    if (state.interrupted) throw error;
    throw new Error(
      `could not start the test S3 server: ${error.message}\n--- its last output:\n${server.outputTail.join('\n')}`,
      { cause: error },
    );
  }
}

function withDeadline(promise, ms, message) {
  let timer;
  const deadline = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** SIGTERM lets the script stop Swift and remove its data; SIGKILL on the group catches what remains. */
async function stopS3Server(server) {
  const { child } = server;
  if (!server.exited) {
    const exited = once(child, 'exit');
    signalGroup(child.pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
  signalGroup(child.pid, 'SIGKILL');
}

function signalGroup(leaderPid, signal) {
  try {
    process.kill(-leaderPid, signal);
  } catch (error) {
    if (error.code !== 'ESRCH') throw error; // ESRCH: the group is already empty
  }
}

// ---- the test run

/** Runs `node --test`; the spec reporter writes to the terminal and a TAP copy feeds the summary. */
async function runNodeTests(files, nodeOptions, state) {
  const tapFile = path.join(tmpdir(), `node-test-${process.pid}.tap`);
  const args = [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${settings.concurrency}`,
    `--test-timeout=${settings.testTimeoutMs}`,
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    '--test-reporter=tap',
    `--test-reporter-destination=${tapFile}`,
    ...nodeOptions,
    ...files,
  ];
  // The SDK's notice that its 2027 releases need Node 22 would repeat for every test file.
  // No test may look for credentials on the network: the EC2 metadata service is not for tests.
  const env = {
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...process.env,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  // Its own process group: a signal or the run deadline reaches every test file and what it spawned.
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: 'inherit', detached: true });
  state.testRun = child;
  const runTimer = setTimeout(() => {
    log(`the test run exceeded TEST_RUN_TIMEOUT_MS=${settings.runTimeoutMs}: killing it`);
    log('a test file that never exits usually left something open (a server, a timer, a watcher, a child)');
    signalGroup(child.pid, 'SIGKILL');
  }, settings.runTimeoutMs);
  const [code, signal] = await once(child, 'exit');
  clearTimeout(runTimer);
  state.testRun = undefined;
  signalGroup(child.pid, 'SIGKILL'); // anything a test file left behind
  try {
    return { code, signal, counts: readTapCounts(tapFile) };
  } finally {
    rmSync(tapFile, { force: true });
  }
}

/** The run's closing counts (`# pass 3` ...), or undefined when the runner never got to print them. */
function readTapCounts(tapFile) {
  let text;
  try {
    text = readFileSync(tapFile, 'utf8');
  } catch {
    return undefined;
  }
  const counts = {};
  for (const match of text.matchAll(/^# (tests|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) {
    counts[match[1]] = Number(match[2]);
  }
  return counts.tests === undefined ? undefined : counts;
}

// ---- main

async function main() {
  const started = Date.now();
  const cliArgs = process.argv.slice(2);
  const nodeOptions = cliArgs.filter((arg) => arg.startsWith('-'));
  const paths = cliArgs.filter((arg) => !arg.startsWith('-'));
  const files = findTestFiles(
    paths.length > 0 ? paths : DEFAULT_TEST_DIRS.map((dir) => path.join(ROOT, dir)),
  );
  if (files.length === 0) {
    log(`no *.test.ts file under ${(paths.length > 0 ? paths : DEFAULT_TEST_DIRS).join(', ')}`);
    return 1;
  }

  const state = { server: undefined, testRun: undefined, interrupted: undefined };
  const onSignal = (signal) => {
    if (state.interrupted) {
      log(`second ${signal}: killing everything`);
      if (state.testRun) signalGroup(state.testRun.pid, 'SIGKILL');
      if (state.server) signalGroup(state.server.child.pid, 'SIGKILL');
      process.exit(exitCodeForSignal(signal));
    }
    state.interrupted = signal;
    log(`${signal}: stopping the tests and the S3 server`);
    if (state.testRun) signalGroup(state.testRun.pid, signal);
    else if (state.server) signalGroup(state.server.child.pid, 'SIGTERM'); // still starting
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    if (process.env.S3_TEST_ENDPOINT) {
      log(`using the S3 server at S3_TEST_ENDPOINT=${process.env.S3_TEST_ENDPOINT}`);
    } else if (files.every(isUnitTest)) {
      log('only unit tests selected: no S3 server');
    } else {
      const server = await startS3Server(state);
      for (const name of S3_VARIABLES) process.env[name] = server.variables[name];
    }
    if (state.interrupted) return exitCodeForSignal(state.interrupted);

    log(`${files.length} test file(s), ${settings.concurrency} at a time`);
    const result = await runNodeTests(files, nodeOptions, state);
    return report(result, state, started);
  } catch (error) {
    if (state.interrupted) return exitCodeForSignal(state.interrupted);
    throw error;
  } finally {
    if (state.server) await stopS3Server(state.server);
  }
}

function report({ code, signal, counts }, state, started) {
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (state.interrupted) return exitCodeForSignal(state.interrupted);
  if (!counts) {
    log(
      `the test runner ended (${signal ?? `exit code ${code}`}) without its closing counts, after ${seconds} s`,
    );
    return code || 1;
  }
  const failed = (counts.fail ?? 0) + (counts.cancelled ?? 0);
  const skipped = (counts.skipped ?? 0) + (counts.todo ?? 0);
  if (counts.cancelled)
    log(`${counts.cancelled} test(s) cancelled (a file crashed or timed out): counted as failed`);
  console.log(`summary: ${counts.pass ?? 0} passed, ${failed} failed, ${skipped} skipped`);
  log(`finished in ${seconds} s`);
  if (counts.tests === 0) {
    log('no test ran: the selected files define no test');
    return 1;
  }
  if (signal) return 1;
  return code !== 0 ? code : failed > 0 ? 1 : 0;
}

function exitCodeForSignal(signal) {
  return signal === 'SIGINT' ? 130 : 143;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    log(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
