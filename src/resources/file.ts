import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostError, inputError } from '../core/errors.js';
import { change, defineResource, noop, type Plan } from './resource.js';
import { isSecret, redact, type Secret } from '../core/secret.js';
import { attributeDiff, unifiedDiff } from '../report/diff.js';
import type { HostContext } from './host-context.js';
import type { PathStat } from '../transport/connection.js';
import { quote } from '../transport/quote.js';
import { asUser, inParentOf } from '../transport/safe-path.js';
import { statsOf } from '../facts/files.js';
import { modeString, parseMode } from './mode.js';

export interface FileArgs {
  path: string;
  // The content as text (a Secret reveals itself only here), or a controller file to copy.
  content?: string | Buffer | Secret;
  source?: string;
  state?: 'present' | 'absent';
  mode?: number | string;
  owner?: string;
  group?: string;
  // A command run on the uploaded temp file before it replaces the target; `%s` is its path.
  // A failure leaves the old file in place (Ansible's `validate`).
  validate?: string;
  // Treat the content as secret even if no known secret is in it (diffs mask every value).
  // Default: true for a file others may not read (a private file is secret by intent), and
  // for content that holds a known secret; `false` shows a private file's diff in clear.
  sensitive?: boolean;
  // Do every write with this user's privileges: for a file in a directory the user owns.
  runAs?: string;
}

const DEFAULT_MODE = 0o644;

async function desiredBytes(args: FileArgs): Promise<Buffer | undefined> {
  if (args.content !== undefined && args.source !== undefined) {
    throw inputError(`file ${args.path}: give content or source, not both`);
  }
  if (isSecret(args.content)) return Buffer.from(args.content.reveal());
  if (typeof args.content === 'string') return Buffer.from(args.content);
  if (Buffer.isBuffer(args.content)) return args.content;
  if (args.source !== undefined) {
    try {
      return await readFile(args.source);
    } catch (error) {
      throw inputError(`file ${args.path}: cannot read source ${args.source}`, { cause: error });
    }
  }
  return undefined;
}

const isText = (bytes: Buffer) => !bytes.subarray(0, 8000).includes(0);

async function currentText(ctx: HostContext, stat: PathStat, want: Buffer, runAs: string | undefined): Promise<string | undefined> {
  if (!stat.exists || stat.type !== 'file') return undefined;
  // Reading the old content costs a round trip: only for a diff of a text file.
  const old = await ctx.conn.get(stat.path, { runAs });
  return isText(old) && isText(want) ? old.toString('utf8') : undefined;
}

export async function planFile(ctx: HostContext, args: FileArgs, known?: PathStat): Promise<Plan> {
  const path = args.path;
  const stat = known ?? (await statsOf(ctx.facts, [path]))[0]!;
  if (args.state === 'absent') {
    if (!stat.exists) return noop('absent');
    if (stat.type === 'directory') throw hostError(`${path} is a directory; use the directory resource to remove it`);
    return change('remove', async () => {
      await ctx.conn.check(onHost(args, inParentOf(path, (name) => `rm -f -- ${name}`)));
    }, ctx.diff ? `--- ${path}\n+++ /dev/null (removed)` : undefined);
  }
  const want = await desiredBytes(args);
  if (stat.exists && stat.type !== 'file' && stat.type !== undefined) {
    throw hostError(`${path} exists and is a ${stat.type}, not a file`);
  }
  const mode = args.mode === undefined ? (stat.exists ? stat.mode! : DEFAULT_MODE) : parseMode(args.mode, path);
  const wantSha = want && createHash('sha256').update(want).digest('hex');
  const contentChanges = want !== undefined && (!stat.exists || stat.sha256 !== wantSha);
  const attrs: Array<[string, string | undefined, string]> = [];
  if (stat.exists && stat.mode !== mode) attrs.push(['mode', modeString(stat.mode!), modeString(mode)]);
  if (args.owner && stat.exists && stat.owner !== args.owner) attrs.push(['owner', stat.owner, args.owner]);
  if (args.group && stat.exists && stat.group !== args.group) attrs.push(['group', stat.group, args.group]);

  if (!stat.exists && want === undefined) {
    throw inputError(`file ${path}: it does not exist and no content or source was given`);
  }
  if (!contentChanges && attrs.length === 0) return noop(stat.exists ? 'up to date' : 'absent');

  // Masked in the diff: a private file (secret by intent), a Secret, or text in which output
  // masking finds a secret (the output rule, wider than the command-line one: a short secret
  // inside a URL path still counts).
  const text = want?.toString('utf8');
  const sensitive = args.sensitive ?? ((mode & 0o004) === 0 || isSecret(args.content) || (text !== undefined && redact(text) !== text));
  let diff: string | undefined;
  if (ctx.diff) {
    const parts: string[] = [];
    if (contentChanges && want !== undefined) {
      const before = stat.exists ? await currentText(ctx, stat, want, args.runAs) : undefined;
      const binary = !isText(want) || (stat.exists && before === undefined);
      parts.push(binary ? `${path}: binary content differs` : await unifiedDiff(path, before, want.toString('utf8'), sensitive));
    }
    if (attrs.length) parts.push(attributeDiff(path, attrs));
    diff = parts.join('\n');
  }

  if (contentChanges && want !== undefined) {
    const reason = stat.exists ? 'update content' : 'create';
    return change(
      attrs.length ? `${reason}, ${attrs.map(([w]) => w).join(', ')}` : reason,
      async () => {
        await ctx.conn.put(path, want, { mode, owner: args.owner, group: args.group, validate: args.validate, runAs: args.runAs });
      },
      diff,
    );
  }
  // Content is right: fix only the attributes, in place, without rewriting the file.
  return change(`set ${attrs.map(([w, , to]) => `${w} ${to}`).join(', ')}`, async () => {
    await ctx.conn.check(onHost(args, inParentOf(path, (name) => setAttributes(name, mode, args.owner, args.group))));
  }, diff);
}

// chown before chmod: a chown clears setuid and setgid, which the mode then sets again.
export function setAttributes(name: string, mode: number | undefined, owner?: string, group?: string): string {
  const cmds: string[] = [];
  if (owner || group) cmds.push(`chown ${quote(`${owner ?? ''}${group ? `:${group}` : ''}`)} -- ${name}`);
  if (mode !== undefined) cmds.push(`chmod ${modeString(mode)} -- ${name}`);
  return cmds.join(' && ') || ':';
}

const onHost = (args: FileArgs, script: string) => (args.runAs ? asUser(args.runAs, script) : script);

export const file = defineResource<FileArgs>({
  kind: 'file',
  probes: (a) => [{ stat: a.path }],
  title: (a) => `file ${a.path}${a.state === 'absent' ? ' absent' : ''}`,
  plan: (ctx, args) => planFile(ctx, args),
});
