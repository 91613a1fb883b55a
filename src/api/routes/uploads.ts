import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { UploadService } from '../../engine/upload-service.js';
import { uploadDetailsReply, uploadRequestReply } from '../representation.js';
import {
  CreateUploadBody,
  errorReplies,
  ListUploadsQuery,
  RetryReply,
  UploadDetailsReply,
  UploadIdParams,
  UploadRequestReply,
} from '../schemas.js';

export interface UploadRoutesOptions {
  service: UploadService;
}

export const uploadRoutes: FastifyPluginAsyncTypebox<UploadRoutesOptions> = async (app, { service }) => {
  app.post(
    '/uploads',
    {
      schema: {
        tags: ['uploads'],
        summary: 'Create an upload request',
        description:
          'Starts watching `source_folder`: every file matching `pattern`, now or later, is uploaded to `destination_bucket` under `destination_prefix` followed by its path relative to the folder. The folder is checked before anything is stored.',
        body: CreateUploadBody,
        response: { 201: UploadRequestReply, ...errorReplies(400, 409, 413, 415) },
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
      });
      return reply.status(201).send(uploadRequestReply(created));
    },
  );

  app.get(
    '/uploads',
    {
      schema: {
        tags: ['uploads'],
        summary: 'List upload requests',
        description: 'Oldest first. By default the requests still being worked on: `pending` and `active`.',
        querystring: ListUploadsQuery,
        response: {
          200: Type.Array(UploadRequestReply, { description: 'The upload requests, oldest first.' }),
          ...errorReplies(400),
        },
      },
    },
    async (request) => {
      const requests = await service.listUploads(request.query.status);
      return requests.map(uploadRequestReply);
    },
  );

  app.get(
    '/uploads/:upload_id',
    {
      schema: {
        tags: ['uploads'],
        summary: 'Get an upload request and its progress',
        params: UploadIdParams,
        response: { 200: UploadDetailsReply, ...errorReplies(404) },
      },
    },
    async (request) => {
      const { request: upload, totals } = await service.getUpload(request.params.upload_id);
      return uploadDetailsReply(upload, totals);
    },
  );

  app.delete(
    '/uploads/:upload_id',
    {
      schema: {
        tags: ['uploads'],
        summary: 'Cancel an upload request',
        description:
          'Stops watching the folder, stops the uploads in flight and aborts their multipart uploads; objects already uploaded stay. Cancelling a cancelled request again is not an error.',
        params: UploadIdParams,
        response: { 200: UploadRequestReply, ...errorReplies(404) },
      },
    },
    async (request) => uploadRequestReply(await service.cancelUpload(request.params.upload_id)),
  );

  app.post(
    '/uploads/:upload_id/retry',
    {
      schema: {
        tags: ['uploads'],
        summary: 'Retry the failed files now',
        description:
          'Every `failed` file of the request becomes `pending` at once, instead of waiting for the automatic requeue.',
        params: UploadIdParams,
        response: { 200: RetryReply, ...errorReplies(404, 409) },
      },
    },
    async (request) => {
      const { upload_id } = request.params;
      const { requeued } = await service.retryFailed(upload_id);
      return { upload_id, requeued };
    },
  );
};
