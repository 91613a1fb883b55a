// Wiring only: configuration, store, S3, engine, HTTP server and signals.
import { hostname } from 'node:os';
import dotenv from 'dotenv';
import { buildApp } from './api/app.js';
import { ConfigError, loadConfig, resolveSourceRoots, s3SettingsUnset, type Config } from './config.js';
import { bufferBytesOf, MAX_PARTS } from './transfer/part-plan.js';
import { Engine } from './engine/engine.js';
import { SettingsService } from './service/settings.js';
import { UploadService } from './service/upload-service.js';
import { createLogger, type Logger } from './logger.js';
import { ServiceMetrics } from './metrics/service-metrics.js';
import { redactPassword, secretsOf } from './store/database-url.js';
import { openStore } from './store/open-store.js';
import { timedStore } from './store/timed-store.js';
import { BufferPool } from './transfer/buffer-pool.js';
import { sqliteFilesOf } from './store/sqlite/files.js';
import { createObjectAuditor } from './transfer/object-audit.js';
import { createS3Client } from './transfer/s3-client.js';
import { createS3Probe } from './transfer/s3-probe.js';
import { TokenBucket } from './transfer/token-bucket.js';
import { createUploader } from './transfer/uploader.js';
import { VERSION } from './version.js';

/** The configuration, and the real paths of ALLOWED_SOURCE_ROOTS (which must exist). */
async function readConfig(): Promise<{ config: Config; allowedSourceRoots: string[] | undefined }> {
  dotenv.config({ quiet: true });
  try {
    const config = loadConfig(process.env);
    const roots = config.security.allowedSourceRoots;
    return { config, allowedSourceRoots: roots && (await resolveSourceRoots(roots)) };
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`configuration error: ${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
}

async function main(): Promise<void> {
  const { config, allowedSourceRoots } = await readConfig();
  const logger = createLogger(config.logLevel, {
    format: config.logFormat,
    secrets: [
      config.s3.secretAccessKey,
      config.s3.sessionToken,
      config.security.apiToken,
      ...secretsOf(config.databaseUrl),
    ],
  });
  // What log lines call the database: its file, or its URL without the password.
  const database = config.sqlitePath ?? redactPassword(config.databaseUrl);
  // Off (METRICS_ENABLED=false), nothing is measured: no middleware, no timing, no listener.
  const metrics = config.metrics.enabled ? new ServiceMetrics({ version: VERSION, logger }) : undefined;
  const leaseMs = Math.round(config.leaseSeconds * 1000);
  const openedStore = await openStore(config.databaseUrl, config.sqlitePath, {
    poolSize: config.databasePoolSize,
    leaseMs,
    logger,
    lost: (loss) =>
      logger.error(
        { database, file: loss.file, state: loss.kind },
        `the database cannot be used until the service is restarted: ${loss.reason}`,
      ),
  });
  const store = metrics ? timedStore(openedStore, metrics.store) : openedStore;
  if (s3SettingsUnset(process.env)) {
    logger.warn(
      { region: config.s3.region },
      'no S3 endpoint and no credentials are set (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_PROFILE): ' +
        "uploads go to AWS itself with the SDK's default credentials (~/.aws, an instance role); " +
        'see the README to point the service at your S3',
    );
  }
  // The SDK tells every process on Node 20 that its releases after January 2027 need Node 22. The
  // lockfile pins the SDK and package.json's engines say which Node this build runs on, so the
  // notice is for whoever upgrades the SDK, not for users at every start.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  // One bucket for the whole process: every request body shares the limit, which /settings changes.
  const bandwidth = new TokenBucket(config.maxUploadBytesPerSecond);
  const s3 = createS3Client(config.s3, {
    maxSockets: config.maxConcurrentFiles * config.transfer.maxConcurrentParts + 4,
    requestTimeoutMs: config.s3RequestTimeoutMs,
    bandwidth,
    observer: metrics?.s3,
  });
  const buffers = new BufferPool(config.transfer.maxBufferBytes);
  const uploader = createUploader(s3, config.transfer, logger, buffers);
  const auditor = createObjectAuditor(s3, config.transfer, logger);
  const engine = new Engine({
    store,
    uploader,
    auditor,
    probeS3: createS3Probe(s3),
    logger,
    settleSeconds: config.settleSeconds,
    stream: config.transfer.streamGrowingFiles
      ? {
          fromBytes: config.transfer.multipartThresholdBytes,
          belowBytes: MAX_PARTS * config.transfer.streamPartSizeBytes,
        }
      : undefined,
    rescanIntervalSeconds: config.rescanIntervalSeconds,
    failedRequeueIntervalSeconds: config.failedRequeueIntervalSeconds,
    maxConcurrentFiles: config.maxConcurrentFiles,
    claimMemory: {
      bytes: config.transfer.maxBufferBytes,
      bytesOf: (size) => bufferBytesOf(size, config.transfer),
    },
    headFromBytes: config.transfer.multipartThresholdBytes,
    // PostgreSQL keeps no file here that a watched folder could hold.
    databaseFiles: config.sqlitePath === undefined ? [] : await sqliteFilesOf(config.sqlitePath),
    watchObserver: metrics?.watch,
    instance: {
      host: hostname(),
      pid: process.pid,
      version: VERSION,
      sourceRoots: allowedSourceRoots ?? null,
    },
    heartbeatMs: Math.round(config.heartbeatSeconds * 1000),
    leaseMs,
    queuePollMs: Math.round(config.queuePollSeconds * 1000),
    notifyAllowedHosts: config.security.notifyAllowedHosts,
  });
  metrics?.listen(engine.events);
  metrics?.readState({ store, buffers });
  const service = new UploadService({
    store,
    lifecycle: engine,
    auditor,
    allowedSourceRoots,
    objectDefaults: config.objectDefaults,
    notifyAllowedHosts: config.security.notifyAllowedHosts,
  });
  const app = await buildApp({
    service,
    logger,
    version: VERSION,
    apiToken: config.security.apiToken,
    settings: new SettingsService(bandwidth),
    metrics: metrics && { exposition: metrics, public: config.metrics.public },
    events: engine.events,
  });

  // Signals are handled from here on, so that a stop during start-up is a graceful one too.
  const stop = gracefulStop(logger, async () => {
    await app.close();
    await engine.stop();
    await store.close();
    metrics?.stop();
    s3.destroy();
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  // Listen first: a port already taken stops start-up before the engine touches any task.
  const address = await app.listen({ port: config.port, host: config.host });
  await engine.start();
  logger.info(
    {
      address,
      version: VERSION,
      instanceId: store.instanceId,
      database,
      endpoint: config.s3.endpoint ?? 'AWS',
      region: config.s3.region,
      authentication: config.security.apiToken === undefined ? 'none' : 'bearer token',
      allowedSourceRoots: allowedSourceRoots ?? 'any',
      notifyAllowedHosts: config.security.notifyAllowedHosts ?? 'any',
      maxUploadBytesPerSecond: bandwidth.bytesPerSecond,
      metrics: metrics === undefined ? 'off' : config.metrics.public ? 'public' : 'on',
    },
    'service ready',
  );
}

/** The first signal stops gracefully and exits 0; a second one exits at once. */
function gracefulStop(logger: Logger, close: () => Promise<void>): (signal: NodeJS.Signals) => void {
  let stopping = false;
  return (signal) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'stopping: no new work; in-flight uploads get a few seconds');
    close().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
}

main().catch((error: unknown) => {
  process.stderr.write(`fatal: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
