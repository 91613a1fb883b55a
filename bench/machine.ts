// The machine line printed above the tables and kept in the JSON: figures mean little without it.
import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface Machine {
  date: string;
  cores: number;
  cpuModel: string;
  node: string;
  s3Server: string;
  peers: string[];
}

function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown';
  } catch {
    return os.cpus()[0]?.model ?? 'unknown';
  }
}

export function describeMachine(s3Server: string, peers: string[]): Machine {
  return {
    date: new Date().toISOString(),
    cores: os.cpus().length,
    cpuModel: cpuModel(),
    node: process.version,
    s3Server,
    peers,
  };
}

export function machineLine(machine: Machine): string {
  return (
    `${machine.date.slice(0, 10)}; ${machine.cores} cores (${machine.cpuModel}); Node ${machine.node}; ` +
    `S3 server: ${machine.s3Server}; peers: ${machine.peers.join(', ')}`
  );
}
