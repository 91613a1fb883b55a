// The instance a SQLite file serves: one process at a time (the path lock keeps any other out),
// so its row lives in memory, and it holds every task in progress. There are no leases: no other
// instance could take its tasks, and crash recovery at the next start returns them all. The
// methods are the PostgreSQL store's, so that the API shows the same view on both.
import type { Database, Statement } from 'better-sqlite3';
import type { Beat, Instance, InstanceInfo } from '../../domain/instance.js';
import type { EpochMs } from '../../domain/model.js';

interface Registered {
  info: InstanceInfo;
  startedAt: EpochMs;
  heartbeatAt: EpochMs;
}

interface WorkRow {
  upload_id: string;
  files: number;
  bytes_total: number;
  bytes_uploaded: number;
}

export class OwnInstance {
  private registered: Registered | undefined;
  // The kept counts (a row per upload and status), not a walk through the tasks.
  private readonly selectWork: Statement<[], WorkRow>;
  // A range of file_tasks_queue (status first).
  private readonly selectHeld: Statement<[], number>;

  constructor(
    readonly instanceId: string,
    private readonly leaseMs: number,
    db: Database,
    private readonly now: () => EpochMs = Date.now,
  ) {
    this.selectWork = db.prepare<[], WorkRow>(`
      SELECT upload_id, files, bytes_total, bytes_uploaded FROM upload_task_counts
      WHERE status = 'in_progress' AND files > 0 ORDER BY upload_id`);
    this.selectHeld = db
      .prepare<[], number>(`SELECT task_id FROM file_tasks WHERE status = 'in_progress' ORDER BY task_id`)
      .pluck();
  }

  register(info: InstanceInfo): void {
    const now = this.now();
    this.registered = { info, startedAt: now, heartbeatAt: now };
  }

  beat(): Omit<Beat, 'watching'> {
    if (this.registered === undefined)
      throw new Error('beat: the instance is not registered (registerInstance)');
    this.registered.heartbeatAt = this.now();
    return { held: this.selectHeld.all(), registeredAgain: false };
  }

  list(): Instance[] {
    const registered = this.registered;
    if (registered === undefined) return [];
    const work = this.selectWork.all();
    const sum = (value: (row: WorkRow) => number) => work.reduce((total, row) => total + value(row), 0);
    return [
      {
        instanceId: this.instanceId,
        ...registered.info,
        leaseMs: this.leaseMs,
        startedAt: registered.startedAt,
        heartbeatAt: registered.heartbeatAt,
        work: {
          files: sum((row) => row.files),
          bytes: sum((row) => row.bytes_total),
          bytesUploaded: sum((row) => row.bytes_uploaded),
          uploadIds: work.map((row) => row.upload_id),
        },
      },
    ];
  }

  remove(): void {
    this.registered = undefined;
  }
}
