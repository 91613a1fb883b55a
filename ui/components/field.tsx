// A labelled input with its hint and the API's words about it, tied together for screen readers.

interface Props {
  id: string;
  label: string;
  hint?: string;
  value: string;
  onValue(value: string): void;
  /** What the API said of this field, when it refused it. */
  error?: string;
  name?: string;
  password?: boolean;
  inputMode?: 'text' | 'decimal';
  autocomplete?: string;
  spellcheck?: boolean;
  autoFocus?: boolean;
}

export function Field({ id, label, hint, value, onValue, error, password, ...input }: Props) {
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ');
  const attributes = {
    ...input,
    id,
    value,
    onInput: (event: { currentTarget: HTMLInputElement }) => onValue(event.currentTarget.value),
    'aria-invalid': error ? ('true' as const) : undefined,
    'aria-describedby': described || undefined,
  };
  return (
    <div class="field">
      <label for={id}>{label}</label>
      {password ? <input type="password" {...attributes} /> : <input type="text" {...attributes} />}
      {hint && (
        <p id={`${id}-hint`} class="hint">
          {hint}
        </p>
      )}
      {error && (
        <p id={`${id}-error`} class="field-error">
          {error}
        </p>
      )}
    </div>
  );
}

/** A labelled checkbox with its hint, tied together for screen readers. */
export function CheckboxField(props: {
  id: string;
  label: string;
  hint: string;
  checked: boolean;
  onChecked(checked: boolean): void;
}) {
  const { id } = props;
  return (
    <div class="field checkbox">
      <input
        id={id}
        type="checkbox"
        checked={props.checked}
        onChange={(event) => props.onChecked(event.currentTarget.checked)}
        aria-describedby={`${id}-hint`}
      />
      <label for={id}>{props.label}</label>
      <p id={`${id}-hint`} class="hint">
        {props.hint}
      </p>
    </div>
  );
}
