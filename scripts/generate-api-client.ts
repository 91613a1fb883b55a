// Writes src/api/openapi-types.d.ts: the types of a client of the API, from the served document.
import { writeFile } from 'node:fs/promises';
import { API_CLIENT_TYPES_FILE, generateApiClientTypes } from '../test/support/api-client-types.js';

await writeFile(API_CLIENT_TYPES_FILE, await generateApiClientTypes());
console.log(`wrote ${API_CLIENT_TYPES_FILE.pathname}`);
