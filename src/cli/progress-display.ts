// What `status --wait` shows while it waits: a live bar on a terminal (cli-progress), plain lines
// otherwise (a pipe, a file, a CI log), where a redrawn bar would be noise.
import cliProgress from 'cli-progress';
import type { UploadDetailsReply } from '../api/schemas.js';
import { formatBytesOf, formatEta, formatRate } from './format.js';
import type { Output } from './output.js';
import { filesDone, percentOf, progressLine } from './views.js';

export interface ProgressDisplay {
  show(upload: UploadDetailsReply): void;
  /** Draws the last state for good; the terminal's cursor is back. */
  stop(): void;
}

/** `now` is the clock that paces the plain lines (tests give their own). */
export function progressDisplay(out: Output, now: () => number = Date.now): ProgressDisplay {
  return out.isTerminal ? new TerminalBar(out) : new PlainLines(out, now);
}

/**
 * The bar counts bytes (the API's `bytes.uploaded` of `bytes.total`); everything else comes from
 * the API's `progress` as it is, since the service knows the throughput over 20 s and the backlog
 * better than a client guessing from its own samples: cli-progress's own ETA is not used.
 */
class TerminalBar implements ProgressDisplay {
  private readonly bar: cliProgress.SingleBar;
  private started = false;

  constructor(out: Output) {
    this.bar = new cliProgress.SingleBar({
      stream: out.stream,
      format: '{upload} {phase} |{bar}| {percent} | {bytes} | {rate} | ETA {time_left} | files {files}',
      barsize: 24,
      barCompleteChar: '█',
      barIncompleteChar: '░',
      hideCursor: true,
      emptyOnZero: true,
      fps: 5,
    });
  }

  show(upload: UploadDetailsReply): void {
    const payload = {
      upload: upload.upload_id,
      phase: upload.progress.phase,
      percent: percentOf(upload).padStart(4),
      bytes: formatBytesOf(upload.bytes.uploaded, upload.bytes.total),
      rate: formatRate(upload.progress.bytes_per_second),
      time_left: formatEta(upload.progress.eta_seconds),
      files: filesDone(upload),
    };
    // An idle (or completed) upload with nothing in it is complete, not empty.
    const empty = upload.bytes.total === 0;
    const done = upload.progress.phase === 'idle' || upload.progress.phase === 'completed';
    const total = empty && done ? 1 : upload.bytes.total;
    const value = empty ? total : upload.bytes.uploaded;
    if (!this.started) {
      this.bar.start(total, value, payload);
      this.started = true;
      return;
    }
    this.bar.setTotal(total);
    this.bar.update(value, payload);
  }

  stop(): void {
    if (this.started) this.bar.stop();
  }
}

/** A line at once when the phase changes, otherwise at most one every few seconds, and only when something moved. */
export const PLAIN_LINE_INTERVAL_MS = 5_000;

class PlainLines implements ProgressDisplay {
  private lastPhase: string | undefined;
  private lastLine: string | undefined;
  private lastPrintedAt = 0;
  private pending: string | undefined;

  constructor(
    private readonly out: Output,
    private readonly now: () => number,
  ) {}

  show(upload: UploadDetailsReply): void {
    const line = progressLine(upload);
    const phaseChanged = upload.progress.phase !== this.lastPhase;
    this.lastPhase = upload.progress.phase;
    if (line === this.lastLine) {
      this.pending = undefined;
      return;
    }
    if (phaseChanged || this.now() - this.lastPrintedAt >= PLAIN_LINE_INTERVAL_MS) this.print(line);
    else this.pending = line;
  }

  stop(): void {
    if (this.pending !== undefined) this.print(this.pending);
  }

  private print(line: string): void {
    void this.out.write(`${line}\n`);
    this.lastLine = line;
    this.lastPrintedAt = this.now();
    this.pending = undefined;
  }
}
