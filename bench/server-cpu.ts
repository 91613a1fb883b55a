// CPU of the S3 server's processes over a span of a scenario: does the server bound the figures?
// Swift runs each server as one process (workers = 0), so a process near 100% of one core is the
// limit of the run, whatever the client does.
import { cpuSecondsByName } from './process-stats.js';
import type { BenchS3Server } from './s3-server.js';

export interface ServerCpu {
  /** wall seconds of the span */
  seconds: number;
  /** CPU seconds of every server process together */
  total: number;
  byProcess: Record<string, number>;
  /** the process that used the most CPU, and how much of one core that was over the span */
  busiest: string;
  busiestPercentOfCore: number;
}

/** Starts counting; `stop()` gives the figures, or null for an external server (no pids). */
export async function startServerCpu(server: BenchS3Server): Promise<{ stop(): Promise<ServerCpu | null> }> {
  if (server.pids.length === 0) return { stop: async () => null };
  const startedAt = performance.now();
  const before = await cpuSecondsByName(server.pids);
  return {
    async stop() {
      const after = await cpuSecondsByName(server.pids);
      const seconds = (performance.now() - startedAt) / 1000;
      const byProcess = Object.fromEntries(
        Object.entries(after).map(([name, cpu]) => [name, Math.max(0, cpu - (before[name] ?? 0))]),
      );
      const [busiest, busiestCpu] = Object.entries(byProcess).sort((a, b) => b[1] - a[1])[0] ?? ['-', 0];
      return {
        seconds,
        total: Object.values(byProcess).reduce((sum, cpu) => sum + cpu, 0),
        byProcess,
        busiest,
        busiestPercentOfCore: (100 * busiestCpu) / seconds,
      };
    },
  };
}

/** `29.4 s; busiest swift-proxy-server 81% of a core` */
export function describeServerCpu(cpu: ServerCpu | null): string {
  if (!cpu) return '-';
  return `${cpu.total.toFixed(1)} s; busiest ${cpu.busiest.replace(/-server$/, '')} ${cpu.busiestPercentOfCore.toFixed(0)}% of a core`;
}
