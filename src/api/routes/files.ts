import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { UploadService } from '../../service/upload-service.js';
import { fileItem } from '../representation.js';
import { DEFAULT_PAGE_SIZE, FileListReply, ListFilesQuery, ref, UploadIdParams } from '../schemas.js';

export interface FileRoutesOptions {
  service: UploadService;
}

export const fileRoutes: FastifyPluginAsyncTypebox<FileRoutesOptions> = async (app, { service }) => {
  app.get(
    '/uploads/:upload_id/files',
    {
      schema: {
        operationId: 'listUploadFiles',
        tags: ['files'],
        summary: 'List the files of an upload',
        description:
          'One page at a time, in the order the files were first seen; follow `next_cursor` until it is null.',
        params: UploadIdParams,
        querystring: ListFilesQuery,
        response: { 200: ref(FileListReply) },
      },
    },
    async (request) => {
      const { status, limit, cursor } = request.query;
      const page = await service.listFiles(request.params.upload_id, {
        status,
        limit: limit ?? DEFAULT_PAGE_SIZE,
        cursor,
      });
      return { items: page.items.map(fileItem), next_cursor: page.nextCursor };
    },
  );
};
