import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { SettingsService } from '../../service/settings.js';
import { ref, SettingsReply, UpdateSettingsBody } from '../schemas.js';

export interface SettingsRoutesOptions {
  /** The settings that change at run time (the bandwidth limit: MAX_UPLOAD_BYTES_PER_SECOND at start). */
  settings: SettingsService;
}

export const settingsRoutes: FastifyPluginAsyncTypebox<SettingsRoutesOptions> = async (app, { settings }) => {
  const current = (): SettingsReply => ({
    max_upload_bytes_per_second: settings.current().maxUploadBytesPerSecond,
  });

  app.get(
    '/settings',
    {
      schema: {
        operationId: 'getSettings',
        tags: ['settings'],
        summary: 'Read the settings that can be changed while the service runs',
        description: 'The bandwidth limit in force now.',
        response: { 200: ref(SettingsReply) },
      },
    },
    async () => current(),
  );

  app.patch(
    '/settings',
    {
      schema: {
        operationId: 'updateSettings',
        tags: ['settings'],
        summary: 'Change settings while the service runs',
        description:
          'Sets the fields given and answers every setting as it now is. `max_upload_bytes_per_second` applies at once to all uploads, the parts being sent included; `0` lifts the limit. A change lasts until the service stops: at the next start `MAX_UPLOAD_BYTES_PER_SECOND` applies again.',
        body: UpdateSettingsBody,
        response: { 200: ref(SettingsReply) },
      },
    },
    async (request) => {
      const limit = request.body?.max_upload_bytes_per_second;
      const previous = settings.update({ maxUploadBytesPerSecond: limit }).maxUploadBytesPerSecond;
      if (limit !== undefined && limit !== previous) {
        request.log.info(
          { maxUploadBytesPerSecond: limit, previous },
          limit === 0 ? 'upload bandwidth limit lifted' : 'upload bandwidth limit changed',
        );
      }
      return current();
    },
  );
};
