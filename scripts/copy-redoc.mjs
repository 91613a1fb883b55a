// `npm run build`, after tsc: copies ReDoc's standalone bundle and its license notices into
// dist/vendor/redoc/, where the built service serves /redoc from. redoc is a development
// dependency: its bundle is self-contained, so production installs need none of its packages.
import { copyFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TARGET = path.join(ROOT, 'dist', 'vendor', 'redoc');
const bundle = createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');
const redocRoot = path.resolve(path.dirname(bundle), '..');

await mkdir(TARGET, { recursive: true });
for (const [from, to] of [
  [bundle, 'redoc.standalone.js'],
  [`${bundle}.LICENSE.txt`, 'redoc.standalone.js.LICENSE.txt'],
  [path.join(redocRoot, 'LICENSE'), 'LICENSE'],
]) {
  await copyFile(from, path.join(TARGET, to));
}
console.log(`copied ReDoc's bundle to ${path.relative(ROOT, TARGET)}`);
