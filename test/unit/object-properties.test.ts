// Object properties: S3's rules for storage class, encryption, metadata and tags, the service's
// defaults, the Content-Type of a key, and how POST /uploads refuses and shows them.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { buildApp } from '../../src/api/app.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import {
  checkObjectProperties,
  NO_OBJECT_PROPERTIES,
  ObjectPropertiesError,
  taggingOf,
  withDefaults,
  type ObjectProperties,
  type ObjectPropertiesInput,
} from '../../src/domain/object-properties.js';
import { UploadService } from '../../src/service/upload-service.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { contentTypeOf, objectHeadersOf } from '../../src/transfer/object-headers.js';
import { FakeAuditor } from '../support/fake-auditor.js';
import { RecordingLifecycle } from '../support/recording-lifecycle.js';

/** The field the check names when it refuses `input`. */
function refusedField(input: ObjectPropertiesInput): string {
  try {
    checkObjectProperties(input);
  } catch (error) {
    assert.ok(error instanceof ObjectPropertiesError, String(error));
    assert.ok(error.problem.message.length > 0);
    return error.problem.field;
  }
  assert.fail(`accepted ${JSON.stringify(input)}`);
}

describe('checkObjectProperties', () => {
  test('accepts what S3 accepts, and keeps metadata keys in lower case', () => {
    assert.deepEqual(checkObjectProperties({}), NO_OBJECT_PROPERTIES);
    assert.deepEqual(
      checkObjectProperties({
        storageClass: 'DEEP_ARCHIVE',
        sse: 'aws:kms',
        sseKmsKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        metadata: { Project: 'Genomics run 42', 'x_y.z~1': '' },
        tags: { 'Lab Name': 'sequencing: A/B @ 1+1=2', été: 'ça_va', empty: '' },
      }),
      {
        storageClass: 'DEEP_ARCHIVE',
        sse: 'aws:kms',
        sseKmsKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        metadata: { project: 'Genomics run 42', 'x_y.z~1': '' },
        tags: { 'Lab Name': 'sequencing: A/B @ 1+1=2', été: 'ça_va', empty: '' },
      },
    );
    assert.equal(checkObjectProperties({ sse: 'AES256' }).sse, 'AES256');
  });

  test('refuses each broken rule, naming the field', () => {
    const cases: [ObjectPropertiesInput, string][] = [
      [{ storageClass: 'standard' }, 'object_properties.storage_class'],
      [{ storageClass: 'COLD' }, 'object_properties.storage_class'],
      [{ sse: 'aws:kms:dsse' }, 'object_properties.sse'],
      [{ sse: 'aes256' }, 'object_properties.sse'],
      [{ sseKmsKeyId: 'alias/a' }, 'object_properties.sse_kms_key_id'],
      [{ sse: 'AES256', sseKmsKeyId: 'alias/a' }, 'object_properties.sse_kms_key_id'],
      [{ sse: 'aws:kms', sseKmsKeyId: 'alias/a b' }, 'object_properties.sse_kms_key_id'],
      [{ sse: 'aws:kms', sseKmsKeyId: '' }, 'object_properties.sse_kms_key_id'],
      [{ metadata: { sha256: 'abc' } }, 'object_properties.metadata.sha256'],
      [{ metadata: { SHA256: 'abc' } }, 'object_properties.metadata.SHA256'],
      [{ metadata: { 'a b': 'x' } }, 'object_properties.metadata.a b'],
      [{ metadata: { 'a:b': 'x' } }, 'object_properties.metadata.a:b'],
      [{ metadata: { '': 'x' } }, 'object_properties.metadata.'],
      [{ metadata: { clé: 'x' } }, 'object_properties.metadata.clé'],
      [{ metadata: { a: 'é' } }, 'object_properties.metadata.a'],
      [{ metadata: { a: 'line\nbreak' } }, 'object_properties.metadata.a'],
      [{ metadata: { a: ' padded' } }, 'object_properties.metadata.a'],
      [{ metadata: { Run: '1', run: '2' } }, 'object_properties.metadata.run'],
      [{ metadata: { a: 'x'.repeat(2048) } }, 'object_properties.metadata'],
      [
        { tags: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, 'v'])) },
        'object_properties.tags',
      ],
      [{ tags: { '': 'v' } }, 'object_properties.tags.'],
      [{ tags: { ['k'.repeat(129)]: 'v' } }, `object_properties.tags.${'k'.repeat(129)}`],
      [{ tags: { k: 'v'.repeat(257) } }, 'object_properties.tags.k'],
      [{ tags: { 'aws:created': 'v' } }, 'object_properties.tags.aws:created'],
      [{ tags: { 'AWS:x': 'v' } }, 'object_properties.tags.AWS:x'],
      [{ tags: { 'a&b': 'v' } }, 'object_properties.tags.a&b'],
      [{ tags: { k: 'v?' } }, 'object_properties.tags.k'],
    ];
    for (const [input, field] of cases) assert.equal(refusedField(input), field, JSON.stringify(input));
    // The limits themselves are accepted.
    checkObjectProperties({ metadata: { a: 'x'.repeat(2047) } });
    checkObjectProperties({ tags: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, 'v'])) });
    checkObjectProperties({ tags: { ['k'.repeat(128)]: 'v'.repeat(256) } });
  });

  test('defaults fill what is left out; sse and its key go together', () => {
    const defaults: ObjectProperties = {
      storageClass: 'STANDARD_IA',
      sse: 'aws:kms',
      sseKmsKeyId: 'alias/default',
      metadata: { project: 'p' },
      tags: { lab: 'l' },
    };
    assert.deepEqual(checkObjectProperties(withDefaults({}, defaults)), defaults);
    assert.deepEqual(checkObjectProperties(withDefaults({ sse: 'AES256' }, defaults)), {
      ...defaults,
      sse: 'AES256',
      sseKmsKeyId: null,
    });
    assert.deepEqual(
      checkObjectProperties(withDefaults({ storageClass: null, metadata: {}, tags: { run: '1' } }, defaults)),
      { ...defaults, storageClass: null, metadata: {}, tags: { run: '1' } },
    );
  });
});

describe('what a write carries', () => {
  test('the Content-Type comes from the extension of the key', () => {
    assert.equal(contentTypeOf('runs/42/sample_R1.fastq.gz'), 'application/gzip');
    assert.equal(contentTypeOf('a.gz'), 'application/gzip');
    assert.equal(contentTypeOf('notes/a.txt'), 'text/plain');
    assert.equal(contentTypeOf('A.JSON'), 'application/json');
    assert.equal(contentTypeOf('data.unknownext'), 'application/octet-stream');
    assert.equal(contentTypeOf('txt'), 'application/octet-stream');
    assert.equal(contentTypeOf('dir.txt/Makefile'), 'application/octet-stream');
  });

  test('tags are a URL-encoded query string; nothing unset is sent', () => {
    assert.equal(taggingOf({}), undefined);
    assert.equal(taggingOf({ 'Lab Name': 'a/b+c=d', été: '' }), 'Lab%20Name=a%2Fb%2Bc%3Dd&%C3%A9t%C3%A9=');
    assert.deepEqual(objectHeadersOf('x.txt', NO_OBJECT_PROPERTIES), { ContentType: 'text/plain' });
    assert.deepEqual(
      objectHeadersOf('x.bin', {
        storageClass: 'GLACIER',
        sse: 'aws:kms',
        sseKmsKeyId: 'alias/k',
        metadata: { a: '1' },
        tags: { b: '2' },
      }),
      {
        ContentType: 'application/octet-stream',
        StorageClass: 'GLACIER',
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: 'alias/k',
        Metadata: { a: '1' },
        Tagging: 'b=2',
      },
    );
  });
});

describe('the defaults from the environment', () => {
  test('are read and checked like an order', () => {
    assert.deepEqual(loadConfig({}).objectDefaults, NO_OBJECT_PROPERTIES);
    assert.deepEqual(
      loadConfig({
        DEFAULT_STORAGE_CLASS: 'standard_ia',
        DEFAULT_SSE: 'aws:kms',
        DEFAULT_SSE_KMS_KEY_ID: 'alias/lab',
        DEFAULT_OBJECT_METADATA: '{"project":"genomics"}',
        DEFAULT_OBJECT_TAGS: '{"lab":"seq"}',
      }).objectDefaults,
      {
        storageClass: 'STANDARD_IA',
        sse: 'aws:kms',
        sseKmsKeyId: 'alias/lab',
        metadata: { project: 'genomics' },
        tags: { lab: 'seq' },
      },
    );
    const refused: [Record<string, string>, string][] = [
      [{ DEFAULT_STORAGE_CLASS: 'COLD' }, 'DEFAULT_STORAGE_CLASS'],
      [{ DEFAULT_SSE: 'yes' }, 'DEFAULT_SSE'],
      [{ DEFAULT_SSE_KMS_KEY_ID: 'alias/lab' }, 'DEFAULT_SSE_KMS_KEY_ID'],
      [{ DEFAULT_OBJECT_METADATA: 'project=genomics' }, 'DEFAULT_OBJECT_METADATA'],
      [{ DEFAULT_OBJECT_METADATA: '{"sha256":"x"}' }, 'DEFAULT_OBJECT_METADATA'],
      [{ DEFAULT_OBJECT_TAGS: '{"a":1}' }, 'DEFAULT_OBJECT_TAGS'],
      [{ DEFAULT_OBJECT_TAGS: '{"aws:x":"1"}' }, 'DEFAULT_OBJECT_TAGS'],
    ];
    for (const [env, variable] of refused) {
      assert.throws(
        () => loadConfig(env),
        (error: unknown) => error instanceof ConfigError && error.variable === variable,
        JSON.stringify(env),
      );
    }
  });
});

describe('POST /uploads with object_properties', () => {
  const defaults: ObjectProperties = {
    storageClass: 'STANDARD_IA',
    sse: 'AES256',
    sseKmsKeyId: null,
    metadata: { project: 'genomics' },
    tags: { lab: 'seq' },
  };

  async function setUp(t: TestContext) {
    const root = await mkdtemp(path.join(tmpdir(), 'object-properties-'));
    const folder = path.join(root, 'source');
    await mkdir(folder);
    const store = openSqliteStore(path.join(root, 'state.db'));
    const service = new UploadService({
      store,
      lifecycle: new RecordingLifecycle(),
      auditor: new FakeAuditor(),
      objectDefaults: defaults,
    });
    const app = await buildApp({ service, logger: false, version: '0' });
    t.after(async () => {
      await app.close();
      await store.close();
      await rm(root, { recursive: true, force: true });
    });
    let prefix = 0;
    const create = (objectProperties?: unknown) =>
      app.inject({
        method: 'POST',
        url: '/uploads',
        payload: {
          source_folder: folder,
          destination_bucket: 'bucket',
          destination_prefix: `p${++prefix}`,
          ...(objectProperties === undefined ? {} : { object_properties: objectProperties }),
        },
      });
    return { app, create };
  }

  test('takes the defaults for what it leaves out, and GET shows what applies', async (t) => {
    const { app, create } = await setUp(t);
    const omitted = await create();
    assert.equal(omitted.statusCode, 201, omitted.body);
    const shown = {
      storage_class: 'STANDARD_IA',
      sse: 'AES256',
      sse_kms_key_id: null,
      metadata: { project: 'genomics' },
      tags: { lab: 'seq' },
    };
    assert.deepEqual(omitted.json<{ object_properties: unknown }>().object_properties, shown);

    const given = {
      storage_class: 'GLACIER_IR',
      sse: 'aws:kms',
      sse_kms_key_id: 'alias/lab',
      metadata: { Run: '42' },
      tags: {},
    };
    const created = await create(given);
    assert.equal(created.statusCode, 201, created.body);
    const { upload_id: uploadId } = created.json<{ upload_id: string }>();
    const expected = { ...given, metadata: { run: '42' } };
    const one = await app.inject({ method: 'GET', url: `/uploads/${uploadId}` });
    assert.deepEqual(one.json<{ object_properties: unknown }>().object_properties, expected);
    const list = await app.inject({ method: 'GET', url: '/uploads' });
    const listed = list.json<{ upload_id: string; object_properties: unknown }[]>();
    assert.deepEqual(listed.find((upload) => upload.upload_id === uploadId)?.object_properties, expected);

    // What GET shows can be sent back as it is: the order and the representation are one shape.
    const again = await create(one.json<{ object_properties: unknown }>().object_properties);
    assert.equal(again.statusCode, 201, again.body);
    assert.deepEqual(again.json<{ object_properties: unknown }>().object_properties, expected);
    const none = await create({ storage_class: null, sse: null, metadata: {}, tags: {} });
    assert.deepEqual(none.json<{ object_properties: unknown }>().object_properties, {
      storage_class: null,
      sse: null,
      sse_kms_key_id: null,
      metadata: {},
      tags: {},
    });
  });

  test('refuses each broken rule with a 400 naming the field', async (t) => {
    const { create } = await setUp(t);
    const cases: [unknown, string, string][] = [
      [{ storage_class: 'COLD' }, 'validation_error', 'object_properties/storage_class'],
      [{ sse: 'aws:kms:dsse' }, 'validation_error', 'object_properties/sse'],
      [{ sse_kms_key_id: 'alias/a' }, 'invalid_object_properties', 'object_properties.sse_kms_key_id'],
      [
        { sse: 'AES256', sse_kms_key_id: 'k' },
        'invalid_object_properties',
        'object_properties.sse_kms_key_id',
      ],
      [{ metadata: { sha256: 'x' } }, 'invalid_object_properties', 'object_properties.metadata.sha256'],
      [{ metadata: { 'a b': 'x' } }, 'invalid_object_properties', 'object_properties.metadata.a b'],
      [{ metadata: { a: 'ü' } }, 'invalid_object_properties', 'object_properties.metadata.a'],
      [{ metadata: { a: 'x'.repeat(2100) } }, 'invalid_object_properties', 'object_properties.metadata'],
      [{ metadata: { a: 1 } }, 'validation_error', 'object_properties/metadata/a'],
      [{ tags: { 'aws:x': 'v' } }, 'invalid_object_properties', 'object_properties.tags.aws:x'],
      [{ tags: { k: 'v!' } }, 'invalid_object_properties', 'object_properties.tags.k'],
      [
        { tags: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, 'v'])) },
        'invalid_object_properties',
        'object_properties.tags',
      ],
      [{ colour: 'red' }, 'validation_error', 'object_properties/colour'],
      ['STANDARD', 'validation_error', 'object_properties'],
    ];
    for (const [properties, code, field] of cases) {
      const reply = await create(properties);
      const what = `${JSON.stringify(properties)}: ${reply.body}`;
      assert.equal(reply.statusCode, 400, what);
      const body = reply.json<{ error: string; message: string; details: { field: string }[] }>();
      assert.equal(body.error, code, what);
      assert.ok(body.message.includes(field), what);
      assert.ok(
        body.details.some((detail) => detail.field === field),
        what,
      );
    }
  });
});
