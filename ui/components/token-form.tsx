// The service has an API token and the page has none (or a wrong one): ask for it once. It is
// checked with GET /uploads before it is kept, in sessionStorage only, for this browser session.
import { useState } from 'preact/hooks';
import { callApi, savedToken } from '../api.js';
import { Field } from './field.js';

export function TokenForm({ onAccepted }: { onAccepted(): void }) {
  const [token, setToken] = useState('');
  const [refusal, setRefusal] = useState<string>();
  const [checking, setChecking] = useState(false);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    if (checking) return;
    setChecking(true);
    try {
      await callApi('GET', 'uploads', undefined, token);
      savedToken.set(token);
      onAccepted();
    } catch (failure) {
      setRefusal(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setChecking(false);
    }
  };

  return (
    <main class="token-page">
      <h1>S3 folder uploader</h1>
      <form class="card" onSubmit={(event) => void submit(event)} aria-labelledby="token-heading" noValidate>
        <h2 id="token-heading">API token</h2>
        <p>
          This service needs its API token (<code>API_TOKEN</code>). The page keeps it for this browser
          session only, and sends it with every request.
        </p>
        {refusal && (
          <p role="alert" class="error">
            {refusal}
          </p>
        )}
        <Field
          id="api-token"
          label="API token"
          password
          autocomplete="off"
          value={token}
          onValue={setToken}
          autoFocus
        />
        <button type="submit" aria-disabled={checking}>
          {checking ? 'Checking…' : 'Use this token'}
        </button>
      </form>
    </main>
  );
}
