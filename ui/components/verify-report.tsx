// What POST /uploads/{id}/verify found: how many files were checked, and each one found wrong.
import type { VerifyResult } from '../api-types.js';

export function VerifyReport({ report, onDismiss }: { report: VerifyResult; onDismiss(): void }) {
  return (
    <section class="verify-report" aria-labelledby="verify-heading">
      <h3 id="verify-heading">Verify report</h3>
      <p>
        {report.checked} completed {report.checked === 1 ? 'file' : 'files'} checked against S3 and the disk:{' '}
        {report.mismatched === 0
          ? 'every one is as uploaded.'
          : `${report.mismatched} found wrong, ${report.requeued} queued to be uploaded again.`}
      </p>
      {report.mismatches.length > 0 && (
        <div class="table-scroll">
          <table>
            <thead>
              <tr>
                <th scope="col">File</th>
                <th scope="col">Object key</th>
                <th scope="col">What differs</th>
              </tr>
            </thead>
            <tbody>
              {report.mismatches.map((mismatch) => (
                <tr key={mismatch.relative_path}>
                  <th scope="row" class="path">
                    {mismatch.relative_path}
                  </th>
                  <td class="path">{mismatch.object_key}</td>
                  <td>{mismatch.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {report.mismatched > report.mismatches.length && (
            <p>The first {report.mismatches.length} are listed.</p>
          )}
        </div>
      )}
      <button type="button" onClick={onDismiss}>
        Close the report
      </button>
    </section>
  );
}
