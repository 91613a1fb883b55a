// What the benchmark scenarios share: buckets, rclone's command line, and timing a command.
import { execFileSync, spawn } from 'node:child_process';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { deleteBucket, testS3, testS3Client, uniqueBucketName } from '../test/support/s3.js';

export function hasCommand(name: string): boolean {
  try {
    execFileSync('which', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function createBucket(label: string): Promise<string> {
  const client = testS3Client();
  const bucket = uniqueBucketName(label);
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  client.destroy();
  return bucket;
}

export async function dropBucket(bucket: string): Promise<void> {
  const client = testS3Client();
  await deleteBucket(client, bucket);
  client.destroy();
}

/**
 * `rclone copy folder → bucket` with the same concurrency and part size as the service's defaults,
 * configured through the environment (remote `bench:`), against `endpoint` (default: the S3 server).
 */
export function rcloneCopy(
  folder: string,
  bucket: string,
  endpoint = testS3().endpoint,
): { args: string[]; env: NodeJS.ProcessEnv } {
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
  const args = ['copy', folder, `bench:${bucket}`, '--transfers', '8', '--s3-upload-concurrency', '4'];
  args.push('--s3-chunk-size', '8M', '--s3-upload-cutoff', '16M');
  return { args, env };
}

/** Runs a command under /usr/bin/time for its wall time, CPU and peak memory. */
export function timeCommand(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ seconds: number; cpuSeconds: number; peakRssMiB: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'TIME %e %U %S %M', command, ...args], {
      env,
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => {
      const match = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(stderr);
      if (code !== 0 || !match)
        return reject(new Error(`${command} failed (${code}): ${stderr.slice(-2000)}`));
      const [, wall, user, system, kib] = match.map(Number);
      resolve({ seconds: wall!, cpuSeconds: user! + system!, peakRssMiB: kib! / 1024 });
    });
  });
}
