// What a write of an object carries besides its bytes: the Content-Type of the file's name, and the
// upload's object properties, as the fields PutObject and CreateMultipartUpload share.
import mime from 'mime';
import { taggingOf, type ObjectProperties } from '../domain/object-properties.js';

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/**
 * The Content-Type of an object, from the extension of its key: `.gz` (and so `.fastq.gz`) is
 * application/gzip, a name the MIME database does not know application/octet-stream.
 */
export function contentTypeOf(key: string): string {
  const name = key.slice(key.lastIndexOf('/') + 1);
  // mime takes a name without a dot as an extension ('txt' → text/plain): such a name has none.
  if (!name.includes('.')) return DEFAULT_CONTENT_TYPE;
  return mime.getType(name) ?? DEFAULT_CONTENT_TYPE;
}

/** The fields of PutObjectCommand and CreateMultipartUploadCommand for these properties. */
export interface ObjectHeaders {
  ContentType: string;
  StorageClass?: ObjectProperties['storageClass'] & string;
  ServerSideEncryption?: ObjectProperties['sse'] & string;
  SSEKMSKeyId?: string;
  Metadata?: Record<string, string>;
  Tagging?: string;
}

export function objectHeadersOf(key: string, properties: ObjectProperties): ObjectHeaders {
  const headers: ObjectHeaders = { ContentType: contentTypeOf(key) };
  if (properties.storageClass !== null) headers.StorageClass = properties.storageClass;
  if (properties.sse !== null) headers.ServerSideEncryption = properties.sse;
  if (properties.sseKmsKeyId !== null) headers.SSEKMSKeyId = properties.sseKmsKeyId;
  if (Object.keys(properties.metadata).length > 0) headers.Metadata = { ...properties.metadata };
  const tagging = taggingOf(properties.tags);
  if (tagging !== undefined) headers.Tagging = tagging;
  return headers;
}
