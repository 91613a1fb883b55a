// `npm run build`, after tsc: copies ReDoc's standalone bundle and its license notices into
// dist/vendor/redoc/, where the built service serves /redoc from. redoc is a development
// dependency: its bundle is self-contained, so production installs need none of its packages.
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TARGET = path.join(ROOT, 'dist', 'vendor', 'redoc');
const bundle = createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');
const redocRoot = path.resolve(path.dirname(bundle), '..');

/** A copy at least as new as its source and of its size is left alone: an up-to-date build writes nothing. */
async function upToDate(from, to) {
  const source = await stat(from);
  const copy = await stat(to).catch(() => undefined);
  return copy !== undefined && copy.size === source.size && copy.mtimeMs >= source.mtimeMs;
}

await mkdir(TARGET, { recursive: true });
let copied = 0;
for (const [from, to] of [
  [bundle, 'redoc.standalone.js'],
  [`${bundle}.LICENSE.txt`, 'redoc.standalone.js.LICENSE.txt'],
  [path.join(redocRoot, 'LICENSE'), 'LICENSE'],
]) {
  if (await upToDate(from, path.join(TARGET, to))) continue;
  await copyFile(from, path.join(TARGET, to));
  copied += 1;
}
if (copied > 0) console.log(`copied ReDoc's bundle to ${path.relative(ROOT, TARGET)}`);
