import { inputError } from '../core/errors.js';

// The lab's image plan, pure: which images exist, from which Debian base, with which build
// args. Building and importing them (host and targets) is images.ts.

export type Suite = 'trixie' | 'bookworm';

interface BaseSpec {
  suite: Suite;
  // Bump when the package list or the tidy-up changes: the tarball name and the base
  // image's tag carry it, so a stale cache or target image is never taken for current.
  version: string;
  packages: string[];
  pgMajor: number;
}

export const bases: Record<Suite, BaseSpec> = {
  trixie: {
    suite: 'trixie',
    version: 'v3',
    packages: ['postgresql-17', 'redis-server', 'python3', 'python3-psycopg2', 'procps', 'curl'],
    pgMajor: 17,
  },
  bookworm: { suite: 'bookworm', version: 'v3', packages: ['postgresql-15', 'procps', 'curl'], pgMajor: 15 },
};

export const baseImage = (suite: Suite) => `localhost/lab-base-${suite}:${bases[suite].version}`;

// The Postgres majors Debian itself ships in the suites we build from.
export const postgresSuites: Readonly<Record<number, Suite>> = { 17: 'trixie', 15: 'bookworm' };

export const imageDefaults = {
  authentikTags: ['2025.8.1', '2026.2.1'],
  brokenTags: [] as string[],
  postgresMajors: [17, 15],
} as const;

// Every image name a lab inventory can point at.
export const labImage = {
  postgres: (major: number) => `localhost/lab-postgres:${major}`,
  redis: 'localhost/lab-redis:8',
  authentik: (tag: string) => `localhost/lab-authentik:${tag}`,
} as const;

// Labels on everything we build or import: `hostctl.lab=1` marks lab images, the hash
// says which inputs built it (a changed Containerfile or stand-in means a rebuild).
export const labelLab = 'hostctl.lab';
export const labelHash = 'hostctl.lab.hash';
export const labelBase = 'hostctl.lab.base';

export interface ImageSpec {
  name: string;
  // Sub-directory of assetsDir holding its Containerfile: the build context.
  context: 'postgres' | 'redis' | 'authentik';
  suite: Suite;
  buildArgs: Record<string, string>;
}

// What to build: the authentik tags (ready ones and ones that never get ready, for rollback
// tests) and the Postgres majors.
export interface PlanOptions {
  authentikTags?: string[];
  // Stand-ins whose ready endpoint never answers 200 (for upgrade-rollback tests).
  brokenTags?: string[];
  postgresMajors?: number[];
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

// The pure plan: which images, from which base, with which build args.
export function imageSpecs(options: PlanOptions = {}): ImageSpec[] {
  const majors = options.postgresMajors ?? [...imageDefaults.postgresMajors];
  const tags = options.authentikTags ?? [...imageDefaults.authentikTags];
  const broken = options.brokenTags ?? [...imageDefaults.brokenTags];
  const specs: ImageSpec[] = [];
  for (const major of new Set(majors)) {
    const suite = postgresSuites[major];
    if (!suite) {
      throw inputError(`no lab image for Postgres ${major}`, {
        hint: `Debian ships ${Object.entries(postgresSuites).map(([m, s]) => `${m} (${s})`).join(' and ')}`,
      });
    }
    specs.push({ name: labImage.postgres(major), context: 'postgres', suite, buildArgs: { PG_MAJOR: String(major) } });
  }
  specs.push({ name: labImage.redis, context: 'redis', suite: 'trixie', buildArgs: {} });
  const seen = new Set<string>();
  for (const [tag, isBroken] of [...tags.map((t) => [t, false] as const), ...broken.map((t) => [t, true] as const)]) {
    if (!TAG.test(tag)) throw inputError(`bad image tag ${JSON.stringify(tag)}`, { hint: 'letters, digits, "_", "." and "-", e.g. 2025.8.1' });
    if (seen.has(tag)) throw inputError(`tag ${tag} given twice`, { hint: 'an --authentik-tag and a --broken-tag cannot share a tag: both name localhost/lab-authentik:TAG' });
    seen.add(tag);
    specs.push({
      name: labImage.authentik(tag),
      context: 'authentik',
      suite: 'trixie',
      buildArgs: { STANDIN_VERSION: tag, STANDIN_BROKEN: isBroken ? '1' : '0' },
    });
  }
  return specs;
}

