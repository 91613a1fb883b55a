// docs/events.md against the event catalogue: every type has its section, with an example whose
// data has exactly the type's fields and matches its schema, so that the page cannot drift from
// what the stream sends.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { it } from 'node:test';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import { EVENT_TYPES, EVENT_TYPE_NAMES } from '../../src/api/event-catalogue.js';

it('docs/events.md gives every event type with an example of its data', async () => {
  const page = await readFile(new URL('../../docs/events.md', import.meta.url), 'utf8');
  const documented = [...page.matchAll(/^### `([a-z.]+)`$/gm)].map((match) => match[1]);
  assert.deepEqual(documented, EVENT_TYPE_NAMES, 'one section per type, in the catalogue order');
  for (const type of EVENT_TYPE_NAMES) {
    const section = page.split(`### \`${type}\``)[1]?.split('\n### ')[0] ?? '';
    const example = new RegExp(`^event: ${type.replace('.', '\\.')}\\ndata: (.*)$`, 'm').exec(section);
    assert.ok(example, `${type}: an example frame`);
    const data = JSON.parse(example[1]!) as Record<string, unknown>;
    const schema = EVENT_TYPES[type].data;
    assert.deepEqual(Object.keys(data), Object.keys(schema.properties), `${type}: the fields, in order`);
    const check = TypeBoxValidatorCompiler({ schema, method: 'GET', url: '/events', httpPart: 'body' }) as (
      value: unknown,
    ) => { error?: unknown } | boolean;
    const result = check(data);
    assert.ok(typeof result === 'object' ? !result.error : result, `${type}: the example matches its schema`);
  }
});
