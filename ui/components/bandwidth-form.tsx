// The bandwidth limit, read and changed through GET and PATCH /settings. The limit is typed in
// MiB/s and sent in bytes per second; a value that is not a number is sent as typed, so that the
// API's own message says what is wrong.
import { useEffect, useState } from 'preact/hooks';
import { callApi } from '../api.js';
import type { Settings, SettingsChange } from '../api-types.js';
import { formatBytes } from '../format.js';
import { Field } from './field.js';

const MiB = 1024 * 1024;

export function BandwidthForm({ refresh, announce }: { refresh: number; announce(message: string): void }) {
  const [settings, setSettings] = useState<Settings>();
  const [typed, setTyped] = useState('');
  const [refusal, setRefusal] = useState<string>();
  const [sending, setSending] = useState(false);

  useEffect(() => {
    callApi<Settings>('GET', 'settings').then(setSettings, () => {
      // the page says elsewhere when the service does not answer
    });
  }, [refresh]);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    if (sending) return;
    setSending(true);
    const mebibytes = typed.trim() === '' ? Number.NaN : Number(typed);
    const change = {
      max_upload_bytes_per_second: Number.isFinite(mebibytes) ? Math.round(mebibytes * MiB) : typed,
    } as SettingsChange;
    try {
      const updated = await callApi<Settings>('PATCH', 'settings', change);
      setSettings(updated);
      setRefusal(undefined);
      setTyped('');
      announce(`Bandwidth limit: ${describe(updated.max_upload_bytes_per_second)}.`);
    } catch (failure) {
      setRefusal(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setSending(false);
    }
  };

  return (
    <form
      class="card"
      onSubmit={(event) => void submit(event)}
      aria-labelledby="bandwidth-heading"
      noValidate
    >
      <h2 id="bandwidth-heading">Bandwidth limit</h2>
      <p>
        Now: <strong>{settings ? describe(settings.max_upload_bytes_per_second) : '…'}</strong>, shared by
        every upload.
      </p>
      {refusal && (
        <p role="alert" class="error">
          {refusal}
        </p>
      )}
      <Field
        id="bandwidth-limit"
        label="New limit in MiB/s"
        hint="0 lifts the limit. It lasts until the service restarts."
        inputMode="decimal"
        value={typed}
        onValue={setTyped}
        autocomplete="off"
      />
      <button type="submit" aria-disabled={sending}>
        {sending ? 'Setting…' : 'Set the limit'}
      </button>
    </form>
  );
}

function describe(bytesPerSecond: number): string {
  return bytesPerSecond === 0 ? 'no limit' : `${formatBytes(bytesPerSecond)}/s`;
}
