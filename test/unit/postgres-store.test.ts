import { before } from 'node:test';
import { openPostgresStore } from '../../src/store/postgres/postgres-store.js';
import { describeStoreContract } from '../support/store-contract.js';
import {
  POSTGRES_TEST_URL,
  assertPostgresReachable,
  dropSchema,
  freshSchemaName,
} from '../support/postgres.js';

before(assertPostgresReachable);

describeStoreContract('postgres', async () => {
  const schema = freshSchemaName('contract');
  const store = await openPostgresStore(POSTGRES_TEST_URL, { schema, poolSize: 2 });
  return {
    store,
    async cleanup() {
      await store.close();
      await dropSchema(schema);
    },
  };
});
