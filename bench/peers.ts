// The tools the service is compared with: `rclone copy` and `aws s3 cp --recursive` (aws-cli v2),
// configured like the service's defaults (files at once, parts in flight, part size and multipart
// threshold) and pointed at the benchmark's S3 server. Either may be missing: the benchmark then
// runs without it and says so.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { testS3 } from '../test/support/s3.js';
import { hasCommand } from './tools.js';

const MiB = 1024 * 1024;

/** The service's defaults, which the peers are given too. */
export function serviceDefaults(): {
  files: number;
  partsInFlight: number;
  partMiB: number;
  thresholdMiB: number;
} {
  const config = loadConfig({});
  return {
    files: config.maxConcurrentFiles,
    partsInFlight: config.transfer.maxConcurrentParts,
    partMiB: config.transfer.partSizeBytes / MiB,
    thresholdMiB: config.transfer.multipartThresholdBytes / MiB,
  };
}

/**
 * Files a copy keeps in flight (rclone `--transfers`, aws `max_concurrent_requests`): a number, or
 * the tool's own default (rclone 4, aws 10). Not given: the service's default, as everywhere else.
 */
export type InFlight = number | 'tool-default';

export interface Peer {
  /** e.g. `rclone v1.60.1` */
  name: string;
  command: string;
  /** The command line and environment that copy `folder` into `bucket` (at `endpoint`, default: the S3 server). */
  copy(
    folder: string,
    bucket: string,
    endpoint?: string,
    inFlight?: InFlight,
  ): { args: string[]; env: NodeJS.ProcessEnv };
}

export interface Peers {
  rclone: Peer | undefined;
  aws: Peer | undefined;
  /** Why a peer is left out, e.g. `aws: only aws-cli/1 found` */
  missing: string[];
}

export async function findPeers(work: string): Promise<Peers> {
  const missing: string[] = [];
  const rclone = hasCommand('rclone') ? rclonePeer() : undefined;
  if (!rclone) missing.push('rclone: not installed');
  const awsFound = findAwsV2();
  const aws = awsFound.command ? await awsPeer(awsFound.command, awsFound.version, work) : undefined;
  if (!aws) missing.push(`aws: ${awsFound.why}`);
  return { rclone, aws, missing };
}

function versionOf(command: string): string {
  return execFileSync(command, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    .split('\n')[0]!
    .trim();
}

function rclonePeer(): Peer {
  const defaults = serviceDefaults();
  return {
    name: versionOf('rclone').replace(/^rclone /, 'rclone '),
    command: 'rclone',
    copy(folder, bucket, endpoint = testS3().endpoint, inFlight = defaults.files) {
      const s3 = testS3();
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        RCLONE_CONFIG_BENCH_TYPE: 's3',
        RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
        RCLONE_CONFIG_BENCH_ENDPOINT: endpoint,
        RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: s3.accessKeyId,
        RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: s3.secretAccessKey,
        RCLONE_CONFIG_BENCH_REGION: s3.region,
        RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
      };
      delete env.AWS_CA_BUNDLE; // rclone refuses to start when it points at a bundle it cannot use
      const args = ['copy', folder, `bench:${bucket}`];
      if (inFlight !== 'tool-default') args.push('--transfers', String(inFlight));
      args.push('--s3-upload-concurrency', String(defaults.partsInFlight));
      args.push('--s3-chunk-size', `${defaults.partMiB}M`, '--s3-upload-cutoff', `${defaults.thresholdMiB}M`);
      return { args, env };
    },
  };
}

/** The first `aws` on PATH (or /usr/bin/aws) that is aws-cli v2: a v1 shim may come first. */
function findAwsV2(): { command?: string; version: string; why: string } {
  const candidates = [
    ...(process.env.PATH ?? '')
      .split(':')
      .filter(Boolean)
      .map((dir) => path.join(dir, 'aws')),
    '/usr/bin/aws',
  ];
  const seen: string[] = [];
  for (const candidate of new Set(candidates)) {
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    let version: string;
    try {
      version = versionOf(candidate);
    } catch {
      continue; // e.g. a pyenv shim with no aws behind it
    }
    if (version.startsWith('aws-cli/2')) return { command: candidate, version, why: '' };
    seen.push(`${candidate} is ${version.split(' ')[0]}`);
  }
  return { version: '', why: seen.length ? `no aws-cli v2 (${seen.join('; ')})` : 'not installed' };
}

/** aws-cli's configuration: the service's part sizes, and `maxConcurrentRequests` unless the tool's default. */
function awsConfig(maxConcurrentRequests: InFlight): string {
  const defaults = serviceDefaults();
  return [
    '[default]',
    's3 =',
    ...(maxConcurrentRequests === 'tool-default'
      ? []
      : [`  max_concurrent_requests = ${maxConcurrentRequests}`]),
    `  multipart_chunksize = ${defaults.partMiB}MB`,
    `  multipart_threshold = ${defaults.thresholdMiB}MB`,
    '  addressing_style = path',
    '',
  ].join('\n');
}

async function awsPeer(command: string, version: string, work: string): Promise<Peer> {
  const defaults = serviceDefaults();
  // aws-cli has one bound for every request in flight, files and parts alike: the service's files at once.
  const configFile = path.join(work, 'aws-config');
  await writeFile(configFile, awsConfig(defaults.files));
  return {
    name: version.split(' ')[0]!,
    command,
    copy(folder, bucket, endpoint = testS3().endpoint, inFlight) {
      const s3 = testS3();
      // Another bound in flight needs its own file: aws-cli reads it from nowhere else.
      let config = configFile;
      if (inFlight !== undefined) {
        config = path.join(work, `aws-config-${inFlight}`);
        writeFileSync(config, awsConfig(inFlight));
      }
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        AWS_CONFIG_FILE: config,
        AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'aws-no-credentials'),
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_DEFAULT_REGION: s3.region,
        AWS_REGION: s3.region,
        AWS_EC2_METADATA_DISABLED: 'true',
      };
      delete env.AWS_CA_BUNDLE;
      delete env.AWS_PROFILE;
      const args = ['s3', 'cp', '--recursive', '--only-show-errors', '--endpoint-url', endpoint];
      args.push(folder, `s3://${bucket}/`);
      return { args, env };
    },
  };
}
