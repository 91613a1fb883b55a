// The `sdk` scenario: what the S3 SDK itself costs per request, to see how much of the service's
// CPU per small file it is, and what the SDK's own settings change. 2,000 PutObject of 16 KiB,
// 8 at a time, from this process, with:
//   - the service's client (src/transfer/s3-client.ts: checksums only when required, no
//     "Expect: 100-continue", keep-alive sockets sized to the concurrency) and its Content-MD5;
//   - a client with the SDK's defaults (CRC32 checksums on every request, its default agent).
// Figures: CPU µs per request of this process (user + system), and requests per second.
import { createHash, randomBytes } from 'node:crypto';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createS3Client } from '../src/transfer/s3-client.js';
import { testS3, testS3Settings } from '../test/support/s3.js';
import { fixed, markdownTable } from './table.js';
import { createBucket, dropBucket } from './tools.js';

export const SDK = {
  requests: 2000,
  bodyBytes: 16 * 1024,
  concurrency: 8,
  describe: '2,000 PutObject of 16 KiB, 8 at a time, from one process',
};

export interface SdkFigure {
  client: string;
  requests: number;
  cpuMicrosecondsPerRequest: number;
  requestsPerSecond: number;
}

interface Variant {
  name: string;
  client(): S3Client;
  /** Content-MD5 as the service sends it */
  contentMd5: boolean;
}

function variants(): Variant[] {
  const s3 = testS3();
  const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
  return [
    {
      name: "service's client",
      contentMd5: true,
      client: () => createS3Client(testS3Settings(), { maxSockets: SDK.concurrency }),
    },
    {
      name: 'SDK defaults',
      contentMd5: false,
      client: () =>
        new S3Client({ region: s3.region, endpoint: s3.endpoint, forcePathStyle: true, credentials }),
    },
  ];
}

async function measure(variant: Variant, bucket: string, body: Buffer): Promise<SdkFigure> {
  const client = variant.client();
  const md5 = createHash('md5').update(body).digest('base64');
  const put = (index: number) =>
    client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `${variant.name.replace(/\W+/g, '-')}/${index}`,
        Body: body,
        ContentLength: body.length,
        ...(variant.contentMd5 ? { ContentMD5: md5 } : {}),
      }),
    );
  // Warm-up: connections, the SDK's lazily loaded parts and the JIT.
  await Promise.all(Array.from({ length: SDK.concurrency }, (_, index) => put(-1 - index)));
  let next = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: SDK.concurrency }, async () => {
      while (next < SDK.requests) await put(next++);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  client.destroy();
  return {
    client: variant.name,
    requests: SDK.requests,
    cpuMicrosecondsPerRequest: (cpu.user + cpu.system) / SDK.requests,
    requestsPerSecond: SDK.requests / seconds,
  };
}

export async function runSdk(): Promise<SdkFigure[]> {
  const bucket = await createBucket('bench-sdk');
  const body = randomBytes(SDK.bodyBytes);
  const figures: SdkFigure[] = [];
  try {
    // Twice each, alternating, so that neither always runs on a warmer server.
    for (let round = 0; round < 2; round++) {
      for (const variant of variants()) {
        const figure = await measure(variant, bucket, body);
        console.log(JSON.stringify(figure));
        figures.push(figure);
      }
    }
  } finally {
    await dropBucket(bucket);
  }
  return figures;
}

export function sdkTable(figures: readonly SdkFigure[]): string {
  const names = [...new Set(figures.map((figure) => figure.client))];
  return markdownTable(
    ['client', 'CPU µs per PutObject', 'requests/s'],
    names.map((name) => {
      const runs = figures.filter((figure) => figure.client === name);
      const range = (values: number[], digits: number) => {
        const low = Math.min(...values);
        const high = Math.max(...values);
        return low === high ? fixed(low, digits) : `${fixed(low, digits)}–${fixed(high, digits)}`;
      };
      return [
        name,
        range(
          runs.map((run) => run.cpuMicrosecondsPerRequest),
          0,
        ),
        range(
          runs.map((run) => run.requestsPerSecond),
          0,
        ),
      ];
    }),
  );
}
