// The dashboard's Server-Sent Events parser (ui/sse.ts), against the rules of the HTML standard,
// fed in every kind of piece a network may cut the stream into.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SseParser, type SseMessage } from '../../ui/sse.js';

const STREAM =
  ': connected\n\n' +
  'id: 41\nevent: file.progress\ndata: {"upload_id":"run-7","task_id":12}\n\n' +
  ': heartbeat\n\n' +
  'id: 42\r\nevent: file.completed\r\ndata: {"upload_id":"run-7",\r\ndata: "task_id":12}\r\n\r\n' +
  'event: upload.created\rdata:{"upload_id":"run-8"}\r\r' +
  // A \r may be the first half of \r\n: only what follows it ends the message above.
  ': heartbeat\n';

const EXPECTED: SseMessage[] = [
  { id: '41', event: 'file.progress', data: '{"upload_id":"run-7","task_id":12}' },
  { id: '42', event: 'file.completed', data: '{"upload_id":"run-7",\n"task_id":12}' },
  // No id of its own: the last one given lasts.
  { id: '42', event: 'upload.created', data: '{"upload_id":"run-8"}' },
];

function parseInPieces(pieces: string[]): SseMessage[] {
  const parser = new SseParser();
  return pieces.flatMap((piece) => parser.push(piece));
}

describe('the SSE parser of the dashboard', () => {
  test('reads events, joins data lines, skips comments, with any line ending', () => {
    assert.deepEqual(parseInPieces([STREAM]), EXPECTED);
  });

  test('gives the same events whatever the pieces the stream arrives in', () => {
    for (let cut = 1; cut < STREAM.length; cut++) {
      assert.deepEqual(parseInPieces([STREAM.slice(0, cut), STREAM.slice(cut)]), EXPECTED, `cut at ${cut}`);
    }
    assert.deepEqual(parseInPieces([...STREAM]), EXPECTED, 'one character at a time');
  });

  test('keeps a message until its blank line arrives', () => {
    const parser = new SseParser();
    assert.deepEqual(parser.push('event: upload.cancelled\ndata: {}\n'), []);
    assert.deepEqual(parser.push('\n'), [{ id: '', event: 'upload.cancelled', data: '{}' }]);
  });

  test('follows the field rules: one leading space dropped, no colon means an empty value, unknown fields and data-less messages ignored', () => {
    const messages = parseInPieces([
      'data:  two spaces\n\n',
      'data\n\n',
      'event: lonely\n\n',
      'retry: 10\nfoo: bar\ndata: x\n\n',
      'id: a\0b\ndata: y\n\n',
    ]);
    assert.deepEqual(messages, [
      { id: '', event: 'message', data: ' two spaces' },
      { id: '', event: 'message', data: '' },
      { id: '', event: 'message', data: 'x' },
      { id: '', event: 'message', data: 'y' }, // an id holding NUL is ignored
    ]);
  });
});
