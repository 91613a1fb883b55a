// Where a command's output goes: stdout, as lines for people or one JSON document for scripts.
// Errors are not written here but to stderr, by main.ts.
import { once } from 'node:events';

/** The part of a stream the CLI writes to (process.stdout, or a test's stream). */
export interface OutputStream extends NodeJS.WritableStream {
  isTTY?: boolean;
}

export class Output {
  constructor(readonly stream: OutputStream) {}

  /** A terminal gets the live progress bar; a pipe or a file gets plain lines. */
  get isTerminal(): boolean {
    return this.stream.isTTY === true;
  }

  /** Writes, waiting when the reader is slower than us, so that a long listing holds no backlog in memory. */
  async write(text: string): Promise<void> {
    if (!this.stream.write(text)) await once(this.stream, 'drain');
  }

  lines(lines: readonly string[]): Promise<void> {
    return lines.length === 0 ? Promise.resolve() : this.write(`${lines.join('\n')}\n`);
  }

  /** One JSON document, as the API answered it. */
  json(value: unknown): Promise<void> {
    return this.write(`${JSON.stringify(value, null, 2)}\n`);
  }
}
