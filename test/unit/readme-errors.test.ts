// The error table of docs/api.md is the catalogue's: this fails, printing the table to paste, when they differ.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { it } from 'node:test';
import { ERROR_CATALOGUE } from '../../src/api/errors.js';

export function renderErrorTable(): string {
  const rows = Object.entries(ERROR_CATALOGUE).map(
    ([code, { status, description }]) => `| \`${code}\` | ${status} | ${description} |`,
  );
  return ['| code | status | meaning |', '|---|---|---|', ...rows].join('\n');
}

it('docs/api.md lists every error code of the catalogue, as the catalogue says', async () => {
  const apiDoc = await readFile(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const match = /<!-- errors:start -->\n([\s\S]*?)\n<!-- errors:end -->/.exec(apiDoc);
  assert.ok(match, 'docs/api.md has no <!-- errors:start --> ... <!-- errors:end --> section');
  assert.equal(match[1], renderErrorTable(), 'docs/api.md error table is out of date');
});
