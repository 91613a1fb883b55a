import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { UploadService } from '../../service/upload-service.js';
import { uploadDetailsReply, uploadReply, uploadSummaryReply, verifyReply } from '../representation.js';
import {
  CreateUploadBody,
  CreatedUploadReply,
  ListUploadsQuery,
  ref,
  RescanReply,
  RetryReply,
  UploadDetailsReply,
  UploadIdParams,
  UploadReply,
  UploadSummaryReply,
  VerifyReply,
} from '../schemas.js';

export interface UploadRoutesOptions {
  service: UploadService;
}

export const uploadRoutes: FastifyPluginAsyncTypebox<UploadRoutesOptions> = async (app, { service }) => {
  app.post(
    '/uploads',
    {
      schema: {
        operationId: 'createUpload',
        tags: ['uploads'],
        summary: 'Create an upload',
        description:
          "Starts watching `source_folder`: every file matching `pattern`, now or later, is uploaded to `destination_bucket` under `destination_prefix` followed by its path relative to the folder. With `watch: false` the folder is scanned once instead, and the upload is `completed` once every file found is uploaded. The folder is checked before anything is stored, and so is the bucket, with the service's credentials (see `check_bucket`): a missing bucket or credentials S3 rejects are a 422. An upload that could write the same objects as a live one (same bucket, overlapping prefixes) is a 409 `upload_overlaps` unless `allow_overlap` is true.",
        body: CreateUploadBody,
        response: { 201: ref(CreatedUploadReply) },
      },
    },
    async (request, reply) => {
      const { body } = request;
      const created = await service.createUpload({
        sourceFolder: body.source_folder,
        destinationBucket: body.destination_bucket,
        pattern: body.pattern,
        destinationPrefix: body.destination_prefix,
        uploadId: body.upload_id,
        allowOverlap: body.allow_overlap,
        checkBucket: body.check_bucket,
        watch: body.watch,
        ifExists: body.if_exists,
        completeMarkers: body.complete_markers,
        manifest: body.manifest,
        manifestKey: body.manifest_key,
        notifyUrl: body.notify_url,
        objectProperties: body.object_properties && {
          storageClass: body.object_properties.storage_class,
          sse: body.object_properties.sse,
          sseKmsKeyId: body.object_properties.sse_kms_key_id,
          metadata: body.object_properties.metadata,
          tags: body.object_properties.tags,
        },
      });
      if (created.warnings.length > 0) {
        request.log.warn(
          { uploadId: created.upload.uploadId, bucket: body.destination_bucket, warnings: created.warnings },
          'upload created, but not everything could be checked',
        );
      }
      return reply.status(201).send({ ...uploadReply(created.upload), warnings: created.warnings });
    },
  );

  app.get(
    '/uploads',
    {
      schema: {
        operationId: 'listUploads',
        tags: ['uploads'],
        summary: 'List uploads',
        description:
          'Oldest first. By default every upload but the cancelled ones: `pending`, `active` and `completed`. Each comes with its `progress` (phase, throughput, time left), so that one call can draw a dashboard.',
        querystring: ListUploadsQuery,
        response: {
          200: Type.Array(ref(UploadSummaryReply), { description: 'The uploads, oldest first.' }),
        },
      },
    },
    async (request) => {
      const uploads = await service.listUploadsWithProgress(request.query.status);
      return uploads.map(({ upload, totals, progress }) => uploadSummaryReply(upload, totals, progress));
    },
  );

  app.get(
    '/uploads/:upload_id',
    {
      schema: {
        operationId: 'getUpload',
        tags: ['uploads'],
        summary: 'Get an upload and its progress',
        params: UploadIdParams,
        response: { 200: ref(UploadDetailsReply) },
      },
    },
    async (request) => {
      const { upload, totals, lastScan, progress } = await service.getUpload(request.params.upload_id);
      return uploadDetailsReply(upload, totals, lastScan, progress);
    },
  );

  app.delete(
    '/uploads/:upload_id',
    {
      schema: {
        operationId: 'cancelUpload',
        tags: ['uploads'],
        summary: 'Cancel an upload',
        description:
          'Stops watching the folder, stops the uploads in flight and aborts their multipart uploads; objects already uploaded stay. Cancelling a cancelled upload again is not an error, and neither is cancelling a `completed` one-shot upload: there is nothing left to stop, and it stays `completed`.',
        params: UploadIdParams,
        response: { 200: ref(UploadReply) },
      },
    },
    async (request) => uploadReply(await service.cancelUpload(request.params.upload_id)),
  );

  app.post(
    '/uploads/:upload_id/retry',
    {
      schema: {
        operationId: 'retryUploadFiles',
        tags: ['uploads'],
        summary: 'Retry the failed files now',
        description:
          'Every `failed` file of the upload becomes `pending` at once, instead of waiting for the automatic requeue.',
        params: UploadIdParams,
        response: { 200: ref(RetryReply) },
      },
    },
    async (request) => {
      const { upload_id } = request.params;
      const { requeued } = await service.retryFailed(upload_id);
      return { upload_id, requeued };
    },
  );

  app.post(
    '/uploads/:upload_id/rescan',
    {
      schema: {
        operationId: 'rescanUpload',
        tags: ['uploads'],
        summary: 'Scan the folder now',
        description:
          "Starts a full scan of the upload's folder at once, rather than waiting for the periodic rescan: files that file-system events missed (a network share, a change made through a hard link elsewhere) are found and uploaded. No body. Answers before the scan ends; `last_scan` of GET /uploads/{upload_id} shows its progress and outcome. While a scan runs (the initial one, or another rescan) no other is started, and the answer says so. The next periodic rescan is counted from the end of this one. A cancelled upload, or a completed one-shot upload (it is scanned once), is a 409 `upload_not_watched`.",
        params: UploadIdParams,
        response: { 202: ref(RescanReply) },
      },
    },
    async (request, reply) => {
      const { upload_id } = request.params;
      const rescan = await service.rescan(upload_id);
      return reply.status(202).send({ upload_id, rescan });
    },
  );

  app.post(
    '/uploads/:upload_id/verify',
    {
      schema: {
        operationId: 'verifyUpload',
        tags: ['uploads'],
        summary: 'Check the uploaded files against S3',
        description:
          "Asks S3 for the object of every `completed` file (HEAD: its size and ETag, against what the upload recorded) and looks at the local file (its size, against the size uploaded). Each file found wrong is listed with the reason and becomes `pending` again, to be uploaded anew; its `etag`, `validation`, `sha256` and `uploaded_size` are cleared when the object is not the one uploaded. A file that is gone locally is listed but not requeued, and a cancelled upload's files are listed but never requeued. No body. The answer comes once every completed file is checked, a page of 500 at a time, each page's mismatches requeued before the next is read; the first 1,000 mismatches are listed and `mismatched` counts them all. S3 unreachable: 503 `s3_unavailable`; the files found wrong before that stay requeued.",
        params: UploadIdParams,
        response: { 200: ref(VerifyReply) },
      },
    },
    async (request) => verifyReply(await service.verify(request.params.upload_id)),
  );
};
