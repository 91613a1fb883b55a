// What a write of an object carries besides its bytes: the Content-Type of the file's name, and the
// upload's object properties, as the fields PutObject and CreateMultipartUpload share.
import mime from 'mime';
import { SHA256_METADATA, taggingOf, type ObjectProperties } from '../domain/object-properties.js';

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

/** `sha256`: the content's, when it is known before the write (a single PutObject). */
export function objectHeadersOf(key: string, properties: ObjectProperties, sha256?: string): ObjectHeaders {
  const headers: ObjectHeaders = { ContentType: contentTypeOf(key) };
  if (properties.storageClass !== null) headers.StorageClass = properties.storageClass;
  if (properties.sse !== null) headers.ServerSideEncryption = properties.sse;
  if (properties.sseKmsKeyId !== null) headers.SSEKMSKeyId = properties.sseKmsKeyId;
  const metadata =
    sha256 === undefined ? properties.metadata : { ...properties.metadata, [SHA256_METADATA]: sha256 };
  if (Object.keys(metadata).length > 0) headers.Metadata = { ...metadata };
  const tagging = taggingOf(properties.tags);
  if (tagging !== undefined) headers.Tagging = tagging;
  return headers;
}
