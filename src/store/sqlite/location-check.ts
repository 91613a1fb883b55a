// Whether the database's path still leads to the file the connection holds open. A file removed
// (or replaced) under a running service goes on taking writes through the open handle, into an inode
// that no path reaches: everything written from then on is lost at the next start, and nothing in
// SQLite says so in WAL mode with an exclusive lock. So the path is compared with the identity
// (device and inode) the file had when it was opened.
import { statSync, type BigIntStats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isVanished } from '../../fs-errors.js';

/** How often the path is looked at: a deleted database is seen within about this long. */
const CHECK_INTERVAL_MS = 1000;

/** What became of the database's file or of its write-ahead log. */
export interface DatabaseLoss {
  kind: 'missing' | 'replaced';
  /** The file that went: the database itself or its -wal. */
  file: string;
  /** What happened and what to do, in words for people (completes "the database cannot be used right now: "). */
  reason: string;
}

interface Identity {
  dev: bigint;
  ino: bigint;
}

type Seen = Identity | 'missing' | 'unknown';

export class LocationCheck {
  private readonly walPath: string;
  private readonly opened: Identity;
  /** Undefined when the log was not there at open: then only the database file is compared. */
  private readonly walOpened: Identity | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private loss: DatabaseLoss | undefined;
  private onLost: ((loss: DatabaseLoss) => void) | undefined;

  /** Records what filePath and its -wal are now: call it right after the connection opened them. */
  constructor(private readonly filePath: string) {
    this.walPath = `${filePath}-wal`;
    const opened = identityOf(seenSync(filePath));
    if (!opened) throw new Error(`the database ${filePath} cannot be looked at after it was opened`);
    this.opened = opened;
    this.walOpened = identityOf(seenSync(this.walPath));
  }

  /** The loss found so far; once found it stays, whatever comes back at the path later. */
  get lost(): DatabaseLoss | undefined {
    return this.loss;
  }

  /** Looks now, synchronously: for the few writes a client is told are kept. */
  checkNow(): DatabaseLoss | undefined {
    if (this.loss) return this.loss;
    return this.judge(seenSync(this.filePath), this.walOpened && seenSync(this.walPath));
  }

  /**
   * Looks every second in the background. `onLost` is called once, when a loss is first seen (by
   * this or by checkNow); no more looking is needed after that.
   */
  start(onLost: (loss: DatabaseLoss) => void): void {
    if (this.timer || this.loss) return;
    this.onLost = onLost;
    this.timer = setInterval(() => {
      // A stat that hangs (a network file system) must not pile up behind itself.
      if (this.checking || this.loss) return;
      this.checking = true;
      void Promise.all([seen(this.filePath), this.walOpened && seen(this.walPath)])
        .then(([file, wal]) => this.judge(file, wal))
        .finally(() => {
          this.checking = false;
        });
    }, CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private judge(file: Seen, wal: Seen | undefined): DatabaseLoss | undefined {
    if (this.loss) return this.loss;
    const loss =
      lossOf(this.filePath, this.opened, file) ?? lossOf(this.walPath, this.walOpened, wal, this.filePath);
    if (loss) {
      this.loss = loss;
      this.stop();
      this.onLost?.(loss);
    }
    return loss;
  }
}

/**
 * The loss of `file` (the database, or its log when `database` is given), or undefined when the
 * path still leads to what was opened, or when it cannot be told (an error other than "no such
 * file": the queries themselves then report what is wrong).
 */
function lossOf(
  file: string,
  opened: Identity | undefined,
  now: Seen | undefined,
  database?: string,
): DatabaseLoss | undefined {
  if (!opened || now === undefined || now === 'unknown') return undefined;
  if (now !== 'missing' && now.dev === opened.dev && now.ino === opened.ino) return undefined;
  const kind = now === 'missing' ? 'missing' : 'replaced';
  const what = database === undefined ? `its file ${file}` : `its write-ahead log ${file}`;
  const happened = `${what} was ${kind === 'missing' ? 'removed' : 'replaced by another file'} while the service ran`;
  // With the database file itself intact, a graceful stop checkpoints the log the connection still
  // holds open into it (SQLite does so only when the database file has not moved), and nothing is lost.
  const advice =
    database === undefined
      ? `nothing more is written to it, since nothing written now would be kept: stop the service, put the file back from a backup or remove what is left of it (${file}-wal), and start it again`
      : `nothing more is written: stop the service gracefully (SIGTERM, not SIGKILL), which copies what the log held into ${database}, and start it again`;
  return { kind, file, reason: `${happened}; ${advice}` };
}

function identityOf(seen: Seen): Identity | undefined {
  return typeof seen === 'object' ? seen : undefined;
}

function seenSync(file: string): Seen {
  try {
    return identity(statSync(file, { bigint: true }));
  } catch (error) {
    return isVanished(error) ? 'missing' : 'unknown';
  }
}

async function seen(file: string): Promise<Seen> {
  try {
    return identity(await stat(file, { bigint: true }));
  } catch (error) {
    return isVanished(error) ? 'missing' : 'unknown';
  }
}

/** Big integers: an inode number may pass 2^53 on some file systems. */
function identity(stats: BigIntStats): Identity {
  return { dev: stats.dev, ino: stats.ino };
}
