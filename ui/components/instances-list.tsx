// The instances of the service that share its database (GET /instances), and what each uploads
// now: with several on one PostgreSQL, which does what. Read again on each refresh and every 5 s,
// since their work changes without an event saying so.
import { useEffect, useState } from 'preact/hooks';
import { callApi } from '../api.js';
import type { Instance } from '../api-types.js';
import { formatBytes, formatTime } from '../format.js';

const READ_EVERY_MS = 5000;

export function InstancesList({ refresh }: { refresh: number }) {
  const [instances, setInstances] = useState<Instance[]>();

  useEffect(() => {
    const read = (): void => {
      callApi<Instance[]>('GET', 'instances').then(setInstances, () => {
        // the page says elsewhere when the service does not answer
      });
    };
    read();
    const timer = setInterval(read, READ_EVERY_MS);
    return () => clearInterval(timer);
  }, [refresh]);

  return (
    <section class="card" aria-labelledby="instances-heading">
      <h2 id="instances-heading">Instances</h2>
      {instances === undefined ? (
        <p class="empty">Reading the instances…</p>
      ) : (
        <ul class="instances">
          {instances.map((instance) => (
            <li key={instance.instance_id} data-instance={instance.instance_id}>
              <strong>{instance.host}</strong> (pid {instance.pid}, {instance.version}):{' '}
              {instance.work.files === 0
                ? 'idle'
                : `${instance.work.files} files in progress, ${formatBytes(instance.work.bytes_uploaded)} of ${formatBytes(instance.work.bytes)}, for ${instance.work.upload_ids.join(', ')}`}
              <br />
              <small>last heartbeat {formatTime(instance.heartbeat_at)}</small>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
