// A new upload. The values go to POST /uploads as typed (an empty optional field is left out, so
// the API's default applies); the page does not judge them itself, so a refusal shows the API's
// own message above the form and, for the field at fault, beside it.
import { useRef, useState } from 'preact/hooks';
import { ApiError, callApi } from '../api.js';
import type { CreateUploadBody, CreatedUpload } from '../api-types.js';
import { Field } from './field.js';

const EMPTY = {
  source_folder: '',
  destination_bucket: '',
  destination_prefix: '',
  pattern: '',
  upload_id: '',
};
type TextField = keyof typeof EMPTY;

export function CreateUploadForm({ onCreated }: { onCreated(upload: CreatedUpload): void }) {
  const [values, setValues] = useState(EMPTY);
  const [allowOverlap, setAllowOverlap] = useState(false);
  const [checkBucket, setCheckBucket] = useState(true);
  /** What the service could not check when it created the last upload. */
  const [warnings, setWarnings] = useState<string[]>([]);
  const [watch, setWatch] = useState(true);
  const [refusal, setRefusal] = useState<ApiError>();
  const [sending, setSending] = useState(false);
  const alert = useRef<HTMLParagraphElement>(null);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    if (sending) return;
    setSending(true);
    setWarnings([]);
    const body: CreateUploadBody = {
      source_folder: values.source_folder,
      destination_bucket: values.destination_bucket,
      ...(values.destination_prefix !== '' && { destination_prefix: values.destination_prefix }),
      ...(values.pattern !== '' && { pattern: values.pattern }),
      ...(values.upload_id !== '' && { upload_id: values.upload_id }),
      ...(allowOverlap && { allow_overlap: true }),
      ...(!checkBucket && { check_bucket: false }),
      ...(!watch && { watch: false }),
    };
    try {
      const created = await callApi<CreatedUpload>('POST', 'uploads', body);
      setRefusal(undefined);
      setValues(EMPTY);
      setAllowOverlap(false);
      setCheckBucket(true);
      setWarnings(created.warnings);
      setWatch(true);
      onCreated(created);
    } catch (failure) {
      setRefusal(failure instanceof ApiError ? failure : new ApiError(0, 'unexpected', String(failure)));
      setTimeout(() => focusFirstError(alert.current), 0);
    } finally {
      setSending(false);
    }
  };

  const fieldError = (field: string): string | undefined =>
    refusal?.details.find((detail) => detail.field === field)?.message;
  const field = (name: TextField) => ({
    id: `create-${name}`,
    name,
    value: values[name],
    onValue: (value: string) => setValues((current) => ({ ...current, [name]: value })),
    error: fieldError(name),
    autocomplete: 'off',
    spellcheck: false,
  });

  return (
    <form class="card" onSubmit={(event) => void submit(event)} aria-labelledby="create-heading" noValidate>
      <h2 id="create-heading">New upload</h2>
      {refusal && (
        <p role="alert" class="error" ref={alert} tabIndex={-1} data-code={refusal.code}>
          {refusal.message}
        </p>
      )}
      <Field
        {...field('source_folder')}
        label="Source folder"
        hint="Absolute path on the service's machine."
      />
      <Field {...field('destination_bucket')} label="Bucket" />
      <Field
        {...field('destination_prefix')}
        label="Key prefix (optional)"
        hint="Put in front of every key."
      />
      <Field
        {...field('pattern')}
        label="Pattern (optional)"
        hint="A glob such as *.fastq.gz; every file if empty."
      />
      <Field {...field('upload_id')} label="Upload id (optional)" hint="Your own id; a new UUID if empty." />
      <div class="field checkbox">
        <input
          id="create-watch"
          type="checkbox"
          checked={watch}
          onChange={(event) => setWatch(event.currentTarget.checked)}
          aria-describedby="create-watch-hint"
        />
        <label for="create-watch">Watch for new files</label>
        <p id="create-watch-hint" class="hint">
          Untick to upload the files there now, once: the upload is then completed when they all are.
        </p>
      </div>
      <div class="field checkbox">
        <input
          id="create-allow_overlap"
          type="checkbox"
          checked={allowOverlap}
          onChange={(event) => setAllowOverlap(event.currentTarget.checked)}
          aria-describedby="create-allow_overlap-hint"
        />
        <label for="create-allow_overlap">Allow overlap with a live upload</label>
        <p id="create-allow_overlap-hint" class="hint">
          Two uploads to the same bucket whose prefixes overlap are refused unless this is ticked.
        </p>
      </div>
      <div class="field checkbox">
        <input
          id="create-check_bucket"
          type="checkbox"
          checked={checkBucket}
          onChange={(event) => setCheckBucket(event.currentTarget.checked)}
          aria-describedby="create-check_bucket-hint"
        />
        <label for="create-check_bucket">Check the bucket first</label>
        <p id="create-check_bucket-hint" class="hint">
          A missing bucket or rejected credentials are refused at once. Untick for a bucket that will exist
          later.
        </p>
      </div>
      <button type="submit" aria-disabled={sending}>
        {sending ? 'Creating…' : 'Create upload'}
      </button>
      {warnings.length > 0 && (
        <div role="status" class="warnings">
          <p>Created, but not everything could be checked:</p>
          <ul>
            {warnings.map((warning) => (
              <li key={warning}>{warning}</li>
            ))}
          </ul>
        </div>
      )}
    </form>
  );
}

/** The first field the API refused, or else the message, takes the focus. */
function focusFirstError(alert: HTMLElement | null): void {
  const invalid = alert?.closest('form')?.querySelector<HTMLElement>('[aria-invalid="true"]');
  (invalid ?? alert)?.focus();
}
