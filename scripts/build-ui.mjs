// `npm run build`, after tsc: bundles the dashboard (ui/, Preact and TSX) with esbuild into dist/ui/:
// index.html, one script and one style sheet, the last two named by their content's hash so that a
// browser may cache them for ever. Nothing is written when dist/ui/index.html is newer than every
// input (ui/, this script, tsconfig.ui.json, the lockfile that pins Preact), so `npm start` stays fast.
// The new build is written beside dist/ui and swapped in whole, so a reader never sees half of it.
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = path.join(ROOT, 'ui');
const TARGET = path.join(ROOT, 'dist', 'ui');
const OTHER_INPUTS = ['scripts/build-ui.mjs', 'tsconfig.ui.json', 'package-lock.json'].map((file) =>
  path.join(ROOT, file),
);
const PAGE = 'index.html';

/** Every file under a folder. */
async function filesUnder(folder) {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.join(entry.parentPath, entry.name));
}

async function upToDate() {
  const built = await stat(path.join(TARGET, PAGE)).catch(() => undefined);
  if (built === undefined) return false;
  const inputs = [...(await filesUnder(SOURCE)), ...OTHER_INPUTS];
  const times = await Promise.all(inputs.map(async (file) => (await stat(file)).mtimeMs));
  return times.every((time) => time < built.mtimeMs);
}

/** Preact is MIT-licensed: its notice goes along with the bundle that holds it. */
function preactNotice() {
  const preactRoot = path.join(ROOT, 'node_modules', 'preact');
  const { version } = JSON.parse(readFileSync(path.join(preactRoot, 'package.json'), 'utf8'));
  const license = readFileSync(path.join(preactRoot, 'LICENSE'), 'utf8').trim().replaceAll('*/', '* /');
  return `/*! This bundle holds Preact ${version} (https://preactjs.com):\n\n${license}\n*/`;
}

async function bundle(outdir) {
  const result = await build({
    entryPoints: [path.join(SOURCE, 'main.tsx'), path.join(SOURCE, 'styles.css')],
    outdir,
    entryNames: '[name]-[hash]',
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome111', 'firefox111', 'safari16'],
    tsconfig: path.join(ROOT, 'tsconfig.ui.json'),
    banner: { js: preactNotice() },
    metafile: true,
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((file) => path.basename(file));
  const script = outputs.find((file) => file.endsWith('.js'));
  const style = outputs.find((file) => file.endsWith('.css'));
  if (script === undefined || style === undefined || outputs.length !== 2) {
    throw new Error(`esbuild wrote ${outputs.join(', ')}: expected one .js and one .css file`);
  }
  return { script, style };
}

/** The page from its template, pointing at the hashed files. */
async function writePage(outdir, { script, style }) {
  const template = await readFile(path.join(SOURCE, PAGE), 'utf8');
  const page = template.replace('{{style}}', `./${style}`).replace('{{script}}', `./${script}`);
  if (page.includes('{{'))
    throw new Error(`ui/${PAGE} has a placeholder other than {{style}} and {{script}}`);
  await writeFile(path.join(outdir, PAGE), page);
}

if (await upToDate()) process.exit(0);
const fresh = `${TARGET}.new-${process.pid}`;
const old = `${TARGET}.old-${process.pid}`;
await rm(fresh, { recursive: true, force: true });
await mkdir(fresh, { recursive: true });
try {
  await writePage(fresh, await bundle(fresh));
  await rename(TARGET, old).catch((error) => {
    if (error.code !== 'ENOENT') throw error;
  });
  await rename(fresh, TARGET);
} finally {
  await rm(fresh, { recursive: true, force: true });
  await rm(old, { recursive: true, force: true });
}
console.log(`built the dashboard into ${path.relative(ROOT, TARGET)}`);
