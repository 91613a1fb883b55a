// A new upload. The values go to POST /uploads as typed (an empty optional field is left out, so
// the API's default applies); the page does not judge them itself, so a refusal shows the API's
// own message above the form and, for the field at fault, beside it.
import { useRef, useState } from 'preact/hooks';
import { ApiError, callApi } from '../api.js';
import type { CreateUploadBody, CreatedUpload } from '../api-types.js';
import { CheckboxField, Field } from './field.js';

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
      <CheckboxField
        id="create-watch"
        label="Watch for new files"
        hint="Untick to upload the files there now, once: the upload is then completed when they all are."
        checked={watch}
        onChecked={setWatch}
      />
      <CheckboxField
        id="create-allow_overlap"
        label="Allow overlap with a live upload"
        hint="Two uploads to the same bucket whose prefixes overlap are refused unless this is ticked."
        checked={allowOverlap}
        onChecked={setAllowOverlap}
      />
      <CheckboxField
        id="create-check_bucket"
        label="Check the bucket first"
        hint="A missing bucket or rejected credentials are refused at once. Untick for a bucket that will exist later."
        checked={checkBucket}
        onChecked={setCheckBucket}
      />
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
