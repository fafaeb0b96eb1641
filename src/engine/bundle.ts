import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../core/atomic-file.js';

// A TypeScript playbook and everything it imports from its repository, bundled by esbuild
// into ONE ES module that node imports directly. A loader hook (tsx) costs a worker thread
// and a round trip to it for every import; the bundle costs one file read, and it is kept
// until one of its files changes. Installed packages stay outside it, imported from where
// the playbook's own folder finds them; `hostctl` is always this running library, so a
// playbook's roles and the CLI share one HostctlError, one Secret.

type Input = { path: string; mtimeMs: number; size: number };

interface Manifest {
  bundler: string;
  bundle: string;
  // The playbook's own files and the packages' entry files it imports.
  inputs: Input[];
}

const LIBRARY = new URL('../index.js', import.meta.url).href;
// A bundle made by another version of this file is made again.
const BUNDLER = createHash('sha256').update(readFileSync(fileURLToPath(import.meta.url))).digest('hex').slice(0, 16);
// Old bundles stay this long after a newer one: a run started just before may still load one.
const KEEP_OLD_MS = 10 * 60_000;

// The cache holds code that will run as this user: in their own home, private. A folder
// someone else could write to (e.g. another user's HOME kept by sudo) is not used.
async function cacheDir(): Promise<string | undefined> {
  const dir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'hostctl', 'playbooks');
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const s = await lstat(dir);
    const mine = process.geteuid === undefined || s.uid === process.geteuid();
    return s.isDirectory() && mine && (s.mode & 0o022) === 0 ? dir : undefined;
  } catch {
    return undefined;
  }
}

const load = async (file: string) => (await import(pathToFileURL(file).href)) as { default?: unknown };

async function fresh(manifest: Manifest): Promise<boolean> {
  const now = await Promise.all(manifest.inputs.map((i) => stat(i.path).catch(() => undefined)));
  return now.every((s, n) => s !== undefined && s.mtimeMs === manifest.inputs[n]!.mtimeMs && s.size === manifest.inputs[n]!.size);
}

// The playbook's module: from the cache when none of its files changed, else bundled now.
export async function importPlaybook(path: string): Promise<{ default?: unknown }> {
  process.setSourceMapsEnabled(true);
  const dir = await cacheDir();
  if (!dir) {
    // Without a safe cache the bundle is loaded from a private folder of its own, once.
    const once = await mkdtemp(join(tmpdir(), 'hostctl-playbook-'));
    try {
      await writeFile(join(once, 'playbook.mjs'), (await build(path)).code, { mode: 0o600 });
      return await load(join(once, 'playbook.mjs'));
    } finally {
      await rm(once, { recursive: true, force: true });
    }
  }
  const key = createHash('sha256').update(`${path}\0${LIBRARY}`).digest('hex').slice(0, 24);
  const manifestPath = join(dir, `${key}.json`);
  const cached = await readFile(manifestPath, 'utf8').then((t) => JSON.parse(t) as Manifest, () => undefined);
  const valid = cached?.bundler === BUNDLER && new RegExp(`^${key}-[0-9a-f]{16}\\.mjs$`).test(cached.bundle);
  if (valid && (await fresh(cached))) return load(join(dir, cached.bundle));

  const { code, inputs } = await build(path);
  // Named after its content, so a run importing it never sees another run's half-written file.
  const bundle = `${key}-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.mjs`;
  await writeFileAtomic(join(dir, bundle), code, { mode: 0o600 });
  await writeFileAtomic(manifestPath, JSON.stringify({ bundler: BUNDLER, bundle, inputs } satisfies Manifest), { mode: 0o600 });
  await pruneOld(dir, key, bundle);
  return load(join(dir, bundle));
}

async function pruneOld(dir: string, key: string, current: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(dir)) {
    if (!name.startsWith(`${key}-`) || name === current) continue;
    const s = await stat(join(dir, name)).catch(() => undefined);
    if (s && now - s.mtimeMs > KEEP_OLD_MS) await rm(join(dir, name), { force: true });
  }
}

// A file's size and time, taken BEFORE it is read: an edit while bundling makes the next run
// bundle again instead of keeping the older text.
async function input(path: string): Promise<Input> {
  const s = await stat(path);
  return { path, mtimeMs: s.mtimeMs, size: s.size };
}

const inNodeModules = (path: string) => path.split(sep).includes('node_modules');

async function build(path: string): Promise<{ code: string; inputs: Input[] }> {
  const esbuild = await import('esbuild');
  const seen = new Map<string, Input>();
  // Paths in the metafile, the source map and errors are relative to the root: a bundle does
  // not depend on where it was made from.
  const result = await esbuild
    .build({
      entryPoints: [path],
      absWorkingDir: '/',
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      // Node's conditions, not a bundler's ("module"): the files node itself would load.
      conditions: [],
      metafile: true,
      // A bug in a role is reported at its line in the role's file (see describeError).
      sourcemap: 'inline',
      sourcesContent: false,
      sourceRoot: 'file:///',
      logLevel: 'silent',
      plugins: [
        {
          name: 'hostctl-packages',
          setup(b) {
            // An installed package is imported at run time from the file it resolves to from the
            // importing file, as node would have found it from there; anything else a bare name
            // reaches (tsconfig paths, a workspace's own TypeScript) is bundled like a relative
            // import.
            b.onResolve({ filter: /^[^./]/ }, async (args) => {
              if (args.pluginData === 'resolving' || isBuiltin(args.path)) return undefined;
              if (args.path === 'hostctl') return { path: LIBRARY, external: true };
              const found = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'resolving' });
              if (found.errors.length > 0) return { errors: found.errors };
              if (!inNodeModules(found.path)) return found;
              seen.set(found.path, await input(found.path));
              return { path: pathToFileURL(found.path).href, external: true };
            });
            // Each file keeps its own import.meta.url (roles find their templates and files
            // beside them): declared on its first line, which esbuild renames per module.
            b.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
              seen.set(args.path, await input(args.path));
              const text = await readFile(args.path, 'utf8');
              const url = JSON.stringify(pathToFileURL(args.path).href);
              const meta = `const __hostctl_meta_url = ${url}, __hostctl_meta_filename = ${JSON.stringify(args.path)}, __hostctl_meta_dirname = ${JSON.stringify(dirname(args.path))};`;
              const shebang = text.startsWith('#!') ? text.indexOf('\n') + 1 || text.length : 0;
              const contents = `${text.slice(0, shebang)}${shebang === text.length ? '\n' : ''}${meta}${text.slice(shebang)}`;
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
    })
    .catch((error: unknown) => {
      // Where the source is wrong, relative to where the user is: file:line:column.
      const first = (error as { errors?: { text: string; location: { file: string; line: number; column: number } | null }[] }).errors?.[0];
      if (!first) throw error;
      const at = first.location ? `${relative(process.cwd(), resolve('/', first.location.file))}:${first.location.line}:${first.location.column + 1}: ` : '';
      throw new Error(`${at}${first.text}`, { cause: error });
    });
  const code = result.outputFiles[0]!.text;
  // Also what esbuild read itself (e.g. JSON), timed now.
  const read = Object.keys(result.metafile.inputs).map((p) => resolve('/', p));
  const inputs = await Promise.all([...new Set([...read, ...seen.keys()])].map((p) => seen.get(p) ?? input(p)));
  return { code, inputs };
}
