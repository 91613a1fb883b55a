// The OpenAPI document the service serves passes Redocly's recommended rules (redocly.yaml), with
// and without an API token: no error, and no warning but those accepted below, each with why.
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { lintFromString, loadConfig } from '@redocly/openapi-core';
import { servedOpenApiText } from '../support/openapi-document.js';

const CONFIG_PATH = fileURLToPath(new URL('../../redocly.yaml', import.meta.url));

/** Rule → why its warning is accepted. */
const ACCEPTED_WARNINGS: Record<string, string> = {
  'info-license-strict':
    'the license object has no `url`: the service is proprietary (no LICENSE file), so there is no licence text to link to',
};

for (const apiToken of [undefined, 'a-token']) {
  test(`the served document passes redocly's recommended rules (${apiToken ? 'with' : 'without'} an API token)`, async (t) => {
    const config = await loadConfig({ configPath: CONFIG_PATH });
    const problems = await lintFromString({
      source: await servedOpenApiText(apiToken),
      absoluteRef: 'openapi.json',
      config,
    });
    const described = problems.map(
      (problem) =>
        `${problem.severity} ${problem.ruleId}: ${problem.message} (${problem.location[0]?.pointer ?? '?'})`,
    );
    for (const line of described) t.diagnostic(line);
    assert.deepEqual(
      problems.filter((problem) => problem.severity === 'error'),
      [],
      described.join('\n'),
    );
    const unexplained = problems.filter(
      (problem) => problem.severity === 'warn' && !Object.hasOwn(ACCEPTED_WARNINGS, problem.ruleId),
    );
    assert.deepEqual(unexplained, [], described.join('\n'));
  });
}
