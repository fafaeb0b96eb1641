import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { homedir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// A TypeScript playbook and everything it imports from its repository, bundled by esbuild
// into ONE ES module that node imports directly. A loader hook (tsx) costs a worker thread
// and a round trip to it for every import; the bundle costs one file read, and it is kept
// until one of its source files changes. Packages stay outside it, imported from where the
// playbook's own directory would find them; `hostctl` is always this running library, so
// a playbook's roles and the CLI share one HostctlError, one Secret.

type Input = { path: string; mtimeMs: number; size: number };

interface Manifest {
  bundler: string;
  bundle: string;
  inputs: Input[];
}

const LIBRARY = new URL('../index.js', import.meta.url).href;
// A bundle made by another build of this file is made again.
const BUNDLER = `${LIBRARY}\0${statSync(fileURLToPath(import.meta.url)).mtimeMs}`;

// The cache holds code that will run as this user: kept in their own home, private.
function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'hostctl', 'playbooks');
}

async function fresh(manifest: Manifest): Promise<boolean> {
  const now = await Promise.all(manifest.inputs.map((i) => stat(i.path).catch(() => undefined)));
  return now.every((s, n) => s !== undefined && s.mtimeMs === manifest.inputs[n]!.mtimeMs && s.size === manifest.inputs[n]!.size);
}

// The URL of the bundled playbook, built now if no up-to-date bundle is cached.
export async function bundledPlaybook(path: string): Promise<string> {
  const dir = cacheDir();
  const key = createHash('sha256').update(path).digest('hex').slice(0, 24);
  const manifestPath = join(dir, `${key}.json`);
  const cached = await readFile(manifestPath, 'utf8').then((t) => JSON.parse(t) as Manifest, () => undefined);
  if (cached?.bundler === BUNDLER && (await fresh(cached))) return pathToFileURL(join(dir, cached.bundle)).href;

  const { code, inputs } = await build(path);
  // Named after its content, so a run importing it never sees another run's half-written file.
  const bundle = `${key}-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${key}.${process.pid}`);
  await writeFile(temp, code, { mode: 0o600 });
  await rename(temp, join(dir, bundle));
  const manifest: Manifest = { bundler: BUNDLER, bundle, inputs };
  await writeFile(temp, JSON.stringify(manifest), { mode: 0o600 });
  await rename(temp, manifestPath);
  if (cached && cached.bundle !== bundle) await rm(join(dir, cached.bundle), { force: true });
  return pathToFileURL(join(dir, bundle)).href;
}

// A file's size and time, taken BEFORE it is read: an edit while bundling makes the next run
// bundle again instead of keeping the older text.
async function input(path: string): Promise<Input> {
  const s = await stat(path);
  return { path, mtimeMs: s.mtimeMs, size: s.size };
}

async function build(path: string): Promise<{ code: string; inputs: Input[] }> {
  const esbuild = await import('esbuild');
  // Paths in errors and in the metafile are relative to where the user is.
  const cwd = process.cwd();
  const seen = new Map<string, Input>();
  const result = await esbuild.build({
    entryPoints: [path],
    absWorkingDir: cwd,
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    metafile: true,
    logLevel: 'silent',
    plugins: [
      {
        name: 'hostctl-packages',
        setup(b) {
          // A package is imported at run time from the absolute path it resolves to from the
          // importing file, as node would have found it from there.
          b.onResolve({ filter: /^[^./]/ }, async (args) => {
            if (args.pluginData === 'resolving' || isBuiltin(args.path)) return undefined;
            if (args.path === 'hostctl') return { path: LIBRARY, external: true };
            const found = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'resolving' });
            if (found.errors.length > 0) return { errors: found.errors };
            return { path: pathToFileURL(found.path).href, external: true };
          });
          // Each file keeps its own import.meta.url (roles find their templates and files
          // beside them): declared on its first line, which esbuild renames per module.
          b.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
            seen.set(args.path, await input(args.path));
            const text = await readFile(args.path, 'utf8');
            const url = JSON.stringify(pathToFileURL(args.path).href);
            const meta = `const __hostctl_meta_url = ${url}, __hostctl_meta_filename = ${JSON.stringify(args.path)}, __hostctl_meta_dirname = ${JSON.stringify(dirname(args.path))};`;
            const shebang = text.startsWith('#!') ? text.indexOf('\n') + 1 : 0;
            const contents = `${text.slice(0, shebang)}${meta}${text.slice(shebang)}`;
            return { contents, loader: extname(args.path).replace(/^\.[cm]?/, '') as 'ts' | 'tsx' | 'js' | 'jsx' };
          });
        },
      },
    ],
    define: {
      'import.meta.url': '__hostctl_meta_url',
      'import.meta.filename': '__hostctl_meta_filename',
      'import.meta.dirname': '__hostctl_meta_dirname',
    },
  });
  const code = result.outputFiles[0]!.text;
  // Also what esbuild read itself (e.g. JSON), timed now.
  const inputs = await Promise.all(Object.keys(result.metafile.inputs).map((p) => resolve(cwd, p)).map((p) => seen.get(p) ?? input(p)));
  return { code, inputs };
}

