// The committed client types (src/api/openapi-types.d.ts) are what openapi-typescript generates
// from the document the service serves today, so a client typed by them cannot drift from the API.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { API_CLIENT_TYPES_FILE, generateApiClientTypes } from '../support/api-client-types.js';

test('src/api/openapi-types.d.ts is generated from the served document (npm run generate:api-client)', async () => {
  const committed = await readFile(API_CLIENT_TYPES_FILE, 'utf8');
  assert.ok(
    committed === (await generateApiClientTypes()),
    'src/api/openapi-types.d.ts is out of date: run npm run generate:api-client',
  );
});
