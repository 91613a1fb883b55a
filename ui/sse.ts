// Server-Sent Events parsed by hand, because the browser's EventSource cannot send an Authorization
// header: the page reads GET /events with fetch() and feeds the text here. Follows the HTML
// standard's rules (lines end with \r\n, \n or \r; `:` starts a comment; an empty line ends a
// message; `data` lines are joined with \n; the id lasts until another is given), minus `retry`,
// since the page keeps its own reconnection delays.

export interface SseMessage {
  /** The last id the stream gave, or '' before any. */
  id: string;
  event: string;
  data: string;
}

export class SseParser {
  private rest = '';
  private data: string[] = [];
  private event = '';
  private id = '';

  /** Takes the next piece of the stream; returns the messages it completed. */
  push(text: string): SseMessage[] {
    const input = this.rest + text;
    const messages: SseMessage[] = [];
    let start = 0;
    for (let i = 0; i < input.length; i++) {
      const char = input[i];
      if (char !== '\n' && char !== '\r') continue;
      if (char === '\r' && i === input.length - 1) break; // maybe the first half of \r\n: wait for the next piece
      const message = this.line(input.slice(start, i));
      if (message) messages.push(message);
      if (char === '\r' && input[i + 1] === '\n') i++;
      start = i + 1;
    }
    this.rest = input.slice(start);
    return messages;
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    return undefined;
  }

  private dispatch(): SseMessage | undefined {
    const message =
      this.data.length === 0
        ? undefined
        : { id: this.id, event: this.event || 'message', data: this.data.join('\n') };
    this.data = [];
    this.event = '';
    return message;
  }
}
