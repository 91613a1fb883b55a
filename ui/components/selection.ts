// Which upload is open, kept in the address (#upload=<id>): links select it, the back button
// returns, and a reload or a bookmark opens the same upload.
import { useEffect, useState } from 'preact/hooks';

const PREFIX = '#upload=';

export function uploadHash(uploadId: string): string {
  return `${PREFIX}${encodeURIComponent(uploadId)}`;
}

function selectedInAddress(): string | undefined {
  if (!location.hash.startsWith(PREFIX)) return undefined;
  try {
    return decodeURIComponent(location.hash.slice(PREFIX.length)) || undefined;
  } catch {
    return undefined;
  }
}

export function selectUpload(uploadId: string): void {
  location.hash = uploadHash(uploadId);
}

/** The upload the address names, following its changes. */
export function useSelectedUpload(): string | undefined {
  const [selected, setSelected] = useState(selectedInAddress);
  useEffect(() => {
    const follow = (): void => setSelected(selectedInAddress());
    addEventListener('hashchange', follow);
    return () => removeEventListener('hashchange', follow);
  }, []);
  return selected;
}
