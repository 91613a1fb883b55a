// What every object of an upload carries besides its bytes: storage class, server-side encryption,
// user metadata and tags, checked against S3's rules. The Content-Type is not here: it is each
// file's own, from its name (transfer/object-headers.ts).

/** S3's storage classes a PutObject or CreateMultipartUpload may ask for. */
export const STORAGE_CLASSES = [
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'DEEP_ARCHIVE',
  'GLACIER_IR',
  'OUTPOSTS',
  'SNOW',
  'EXPRESS_ONEZONE',
] as const;
export type StorageClass = (typeof STORAGE_CLASSES)[number];

/** Server-side encryption: with S3's keys (SSE-S3) or with a KMS key (SSE-KMS). */
export const SSE_ALGORITHMS = ['AES256', 'aws:kms'] as const;
export type SseAlgorithm = (typeof SSE_ALGORITHMS)[number];

/**
 * The metadata key this service keeps for itself (x-amz-meta-sha256): the hex SHA-256 of what it
 * puts in one request, so that a later comparison with a file is exact (transfer/existing-object.ts).
 */
export const SHA256_METADATA = 'sha256';
/** S3's limit for user metadata: the UTF-8 bytes of every key and value together. */
export const MAX_METADATA_BYTES = 2048;
export const MAX_TAGS = 10;
export const MAX_TAG_KEY_LENGTH = 128;
export const MAX_TAG_VALUE_LENGTH = 256;
const MAX_KMS_KEY_ID_LENGTH = 2048;

export interface ObjectProperties {
  storageClass: StorageClass | null;
  sse: SseAlgorithm | null;
  /** Only with sse 'aws:kms'; null: the bucket's or account's default KMS key. */
  sseKmsKeyId: string | null;
  /** User metadata (x-amz-meta-*), keys in lower case as S3 keeps them. */
  metadata: Record<string, string>;
  tags: Record<string, string>;
}

export const NO_OBJECT_PROPERTIES: ObjectProperties = {
  storageClass: null,
  sse: null,
  sseKmsKeyId: null,
  metadata: {},
  tags: {},
};

/** Properties as a client or a setting gives them: any field may be absent, or null for none. */
export interface ObjectPropertiesInput {
  storageClass?: string | null;
  sse?: string | null;
  sseKmsKeyId?: string | null;
  metadata?: Readonly<Record<string, string>> | null;
  tags?: Readonly<Record<string, string>> | null;
}

/** What is wrong, and where: `field` is the API's snake_case name (object_properties.metadata.<key>...). */
export interface ObjectPropertyProblem {
  field: string;
  message: string;
}

export class ObjectPropertiesError extends Error {
  constructor(readonly problem: ObjectPropertyProblem) {
    super(`${problem.field}: ${problem.message}`);
    this.name = 'ObjectPropertiesError';
  }
}

/**
 * The properties a new upload gets: each field given wins, an absent one takes the default.
 * `sse` and `sse_kms_key_id` go together: giving either leaves both defaults out, so that an
 * upload asking for AES256 never inherits a default KMS key.
 */
export function withDefaults(
  given: ObjectPropertiesInput,
  defaults: ObjectProperties,
): ObjectPropertiesInput {
  const encryptionGiven = given.sse !== undefined || given.sseKmsKeyId !== undefined;
  return {
    storageClass: given.storageClass !== undefined ? given.storageClass : defaults.storageClass,
    sse: encryptionGiven ? given.sse : defaults.sse,
    sseKmsKeyId: encryptionGiven ? given.sseKmsKeyId : defaults.sseKmsKeyId,
    metadata: given.metadata !== undefined ? given.metadata : defaults.metadata,
    tags: given.tags !== undefined ? given.tags : defaults.tags,
  };
}

/**
 * Checks properties against S3's rules and gives them in the form they are stored and sent.
 * Throws ObjectPropertiesError naming the first field at fault; `field` prefixes its name.
 */
export function checkObjectProperties(
  input: ObjectPropertiesInput,
  field = 'object_properties',
): ObjectProperties {
  const fail = (name: string, message: string): never => {
    throw new ObjectPropertiesError({ field: `${field}.${name}`, message });
  };
  const storageClass = input.storageClass ?? null;
  if (storageClass !== null && !isStorageClass(storageClass)) {
    fail(
      'storage_class',
      `'${storageClass}' is not one of S3's storage classes: ${STORAGE_CLASSES.join(', ')}`,
    );
  }
  const sse = input.sse ?? null;
  if (sse !== null && !isSseAlgorithm(sse)) {
    fail(
      'sse',
      `'${sse}' is not a server-side encryption S3 takes here: AES256 (SSE-S3) or aws:kms (SSE-KMS)`,
    );
  }
  const sseKmsKeyId = input.sseKmsKeyId ?? null;
  if (sseKmsKeyId !== null) {
    if (sse !== 'aws:kms') fail('sse_kms_key_id', 'is only valid with sse aws:kms');
    if (
      sseKmsKeyId === '' ||
      sseKmsKeyId.length > MAX_KMS_KEY_ID_LENGTH ||
      !/^[\x21-\x7e]+$/.test(sseKmsKeyId)
    ) {
      fail(
        'sse_kms_key_id',
        `must be a KMS key id, alias or ARN: 1 to ${MAX_KMS_KEY_ID_LENGTH} printable ASCII characters without spaces`,
      );
    }
  }
  return {
    storageClass: storageClass as StorageClass | null,
    sse: sse as SseAlgorithm | null,
    sseKmsKeyId,
    metadata: checkedMetadata(input.metadata ?? {}, (name, message) => fail(`metadata${name}`, message)),
    tags: checkedTags(input.tags ?? {}, (name, message) => fail(`tags${name}`, message)),
  };
}

export function isStorageClass(value: string): value is StorageClass {
  return (STORAGE_CLASSES as readonly string[]).includes(value);
}

export function isSseAlgorithm(value: string): value is SseAlgorithm {
  return (SSE_ALGORITHMS as readonly string[]).includes(value);
}

/** RFC 9110's token: what an HTTP header name (x-amz-meta-<key>) may hold. */
const HEADER_TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
/** Visible ASCII and inner spaces: what a header value carries unchanged (no edge spaces, which HTTP trims). */
const HEADER_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;

type Fail = (name: string, message: string) => never;

function checkedMetadata(metadata: Readonly<Record<string, string>>, fail: Fail): Record<string, string> {
  const checked: Record<string, string> = {};
  let bytes = 0;
  for (const [key, value] of Object.entries(metadata)) {
    const at = `.${key}`;
    if (!HEADER_TOKEN.test(key)) {
      fail(
        at,
        `the key '${key}' is not an HTTP header token: use letters, digits and ! # $ % & ' * + - . ^ _ \` | ~`,
      );
    }
    const lower = key.toLowerCase();
    if (lower === SHA256_METADATA) {
      fail(
        at,
        `the key '${SHA256_METADATA}' is reserved: the service stores the SHA-256 of the content there`,
      );
    }
    if (Object.hasOwn(checked, lower))
      fail(at, `the key '${key}' is given twice (S3 keeps metadata keys in lower case)`);
    if (typeof value !== 'string' || !HEADER_VALUE.test(value)) {
      fail(
        at,
        'the value must be printable ASCII (space to ~), without leading or trailing spaces, to travel as an HTTP header',
      );
    }
    bytes += Buffer.byteLength(lower) + Buffer.byteLength(value);
    checked[lower] = value;
  }
  if (bytes > MAX_METADATA_BYTES) {
    fail('', `is ${bytes} bytes of keys and values; S3 allows at most ${MAX_METADATA_BYTES}`);
  }
  return checked;
}

/** S3's tag characters: Unicode letters, digits and spaces, and + - = . _ : / @. */
const TAG_TEXT = /^[\p{L}\p{Z}\p{N}+\-=._:/@]*$/u;

function checkedTags(tags: Readonly<Record<string, string>>, fail: Fail): Record<string, string> {
  const entries = Object.entries(tags);
  if (entries.length > MAX_TAGS)
    fail('', `has ${entries.length} tags; S3 allows at most ${MAX_TAGS} per object`);
  const checked: Record<string, string> = {};
  for (const [key, value] of entries) {
    const at = `.${key}`;
    const keyLength = [...key].length;
    if (keyLength < 1 || keyLength > MAX_TAG_KEY_LENGTH) {
      fail(at, `a tag key is 1 to ${MAX_TAG_KEY_LENGTH} characters; this one is ${keyLength}`);
    }
    if (/^aws:/i.test(key)) fail(at, "tag keys starting with 'aws:' are reserved for AWS");
    if (!TAG_TEXT.test(key)) {
      fail(at, 'a tag key may hold letters, digits, spaces and + - = . _ : / @ only');
    }
    if (typeof value !== 'string' || [...value].length > MAX_TAG_VALUE_LENGTH) {
      fail(at, `a tag value is 0 to ${MAX_TAG_VALUE_LENGTH} characters`);
    }
    if (!TAG_TEXT.test(value))
      fail(at, 'a tag value may hold letters, digits, spaces and + - = . _ : / @ only');
    checked[key] = value;
  }
  return checked;
}

/** Tags as S3's Tagging parameter takes them: a URL-encoded query string. */
export function taggingOf(tags: Readonly<Record<string, string>>): string | undefined {
  const entries = Object.entries(tags);
  if (entries.length === 0) return undefined;
  // %20 for a space, not URLSearchParams' '+', which a server may keep as a '+'.
  return entries.map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).join('&');
}
