// CPU and memory of processes, read from /proc (Linux).
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

const TICKS_PER_SECOND = 100;
const MiB = 1024 * 1024;

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces), from field 3 on. */
async function statFields(pid: number): Promise<string[]> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** User + system CPU seconds used so far by a process. */
export async function cpuSeconds(pid: number): Promise<number> {
  const fields = await statFields(pid);
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

async function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
}

/** Peak resident memory (VmHWM) in MiB. */
export async function peakRssMiB(pid: number): Promise<number> {
  return ((await statusKiB(pid, 'VmHWM')) * 1024) / MiB;
}

/** Resident memory now (VmRSS) in MiB. */
export async function rssMiB(pid: number): Promise<number> {
  return ((await statusKiB(pid, 'VmRSS')) * 1024) / MiB;
}

/** Every live process's parent, by pid. */
async function parentsByPid(): Promise<Map<number, number>> {
  const parentOf = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = await statFields(Number(entry)).catch(() => undefined); // gone meanwhile
    if (fields) parentOf.set(Number(entry), Number(fields[1]));
  }
  return parentOf;
}

/** The pid and every live descendant of its. */
function withDescendants(pid: number, parentOf: ReadonlyMap<number, number>): number[] {
  const found = new Set([pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [child, parent] of parentOf) {
      if (found.has(parent) && !found.has(child)) {
        found.add(child);
        grew = true;
      }
    }
  }
  return [...found];
}

/** A process's name: the script it runs (e.g. `swift-proxy-server`), else its command. */
async function processName(pid: number): Promise<string> {
  const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  const script = args.slice(1).find((arg) => !arg.startsWith('-'));
  return path.basename(script ?? args[0] ?? String(pid));
}

/**
 * CPU seconds used so far by each of a group of processes (a server's), by name, each with its live
 * children; a process that has exited counts as 0, so take differences over windows in which none exits.
 */
export async function cpuSecondsByName(pids: readonly number[]): Promise<Record<string, number>> {
  const byName: Record<string, number> = {};
  const parentOf = await parentsByPid();
  for (const pid of pids) {
    const name = await processName(pid).catch(() => String(pid));
    let total = 0;
    for (const member of withDescendants(pid, parentOf)) total += await cpuSeconds(member).catch(() => 0);
    byName[name] = (byName[name] ?? 0) + total;
  }
  return byName;
}

/** CPU seconds counted by `read` from now until `stop()`, and what share of one core that was. */
export async function cpuWindow(
  read: () => Promise<number>,
): Promise<{ stop(): Promise<{ cpuSeconds: number; seconds: number; percentOfCore: number }> }> {
  const startedAt = performance.now();
  const before = await read();
  return {
    async stop() {
      const cpu = (await read()) - before;
      const seconds = (performance.now() - startedAt) / 1000;
      return { cpuSeconds: cpu, seconds, percentOfCore: (100 * cpu) / seconds };
    },
  };
}
