import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import SSHConfig from 'ssh-config';
import { inputError } from '../../core/errors.js';
import { globFiles } from '../../core/glob.js';

// Where and as whom to connect: inventory values, then ~/.ssh/config, then OpenSSH's
// defaults. Lookups follow Ansible, which runs `ssh <ansible_host>`: the config's `Host`
// patterns are matched against ansible_host when given, else the inventory name.

// The part of the channel options that decides the target.
export interface SshTargetOptions {
  // Inventory host name: what messages call the host.
  alias: string;
  // ansible_host.
  host?: string | undefined;
  // ansible_port.
  port?: number | undefined;
  // ansible_user.
  user?: string | undefined;
  // ansible_ssh_private_key_file and -i in ansible_ssh_common_args (tried before the
  // config's and the default keys).
  privateKeyFiles?: readonly string[] | undefined;
  // -J / -o ProxyJump from ansible_ssh_common_args: replaces the config's, as ssh's command
  // line does.
  proxyJump?: string | undefined;
  // Read and written instead of ~/.ssh/known_hosts (and the system-wide files).
  knownHostsFile?: string | undefined;
  acceptNewHostKeys?: boolean | undefined;
  // Defaults to ~/.ssh/config when that file exists.
  sshConfigFile?: string | undefined;
  connectTimeoutMs?: number | undefined;
}

// One machine to authenticate to: the target itself or a ProxyJump hop.
export interface Endpoint {
  // The name it was asked for by (inventory name, or the ProxyJump entry).
  label: string;
  // What to connect to (HostName).
  host: string;
  port: number;
  user: string;
  // Existing private key files, in the order to try them.
  identityFiles: string[];
  // HostKeyAlias: the name its host key is filed under instead of the HostName.
  hostKeyAlias: string | undefined;
  // CheckHostIP: warn when known_hosts holds another key for the address connected to.
  checkHostIp: boolean;
}

export interface ResolvedTarget extends Endpoint {
  // ProxyJump hops, outermost first; empty for a direct connection.
  jumps: Endpoint[];
  // Known hosts read in order; a new key is recorded in the first one.
  knownHostsFiles: string[];
  hashKnownHosts: boolean;
  acceptNewHostKeys: boolean;
  connectTimeoutMs: number;
}

// The local facts resolution depends on, injectable for tests.
export interface LocalEnv {
  home: string;
  localUser: string;
  exists(path: string): boolean;
}

export function localEnv(): LocalEnv {
  let localUser = process.env.USER ?? '';
  try {
    localUser = userInfo().username;
  } catch {
    // No passwd entry (some containers): keep $USER.
  }
  return { home: homedir(), localUser, exists: existsSync };
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

// Parses the given ssh config, or ~/.ssh/config when it exists; undefined when there is none.
export function loadSshConfig(file: string | undefined, env: LocalEnv = localEnv()): SSHConfig | undefined {
  const path = file ?? join(env.home, '.ssh', 'config');
  if (file === undefined && !env.exists(path)) return undefined;
  return parseConfigFile(path, env, 0);
}

// OpenSSH stops at this depth of nested Includes.
const MAX_INCLUDE_DEPTH = 16;

function parseConfigFile(path: string, env: LocalEnv, depth: number): SSHConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw inputError(`cannot read ssh config ${path}: ${(error as Error).message}`, { cause: error });
  }
  let config: SSHConfig;
  try {
    config = SSHConfig.parse(text);
  } catch (error) {
    throw inputError(`cannot parse ssh config ${path}: ${(error as Error).message}`, { cause: error, where: path });
  }
  spliceIncludes(config, path, env, depth);
  return config;
}

// `Include` as OpenSSH reads it: each pattern (a relative one under ~/.ssh, `~` expanded)
// is globbed, and the files' lines take the Include's place, inside a Host or Match block
// too. A pattern that matches nothing is no error.
function spliceIncludes(lines: SSHConfig, from: string, env: LocalEnv, depth: number): void {
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.type !== SSHConfig.DIRECTIVE) continue;
    if ('config' in line) {
      spliceIncludes(line.config, from, env, depth);
      continue;
    }
    if (line.param.toLowerCase() !== 'include') continue;
    if (depth + 1 > MAX_INCLUDE_DEPTH) throw inputError(`ssh config ${from}: more than ${MAX_INCLUDE_DEPTH} nested Includes`, { where: from });
    // A quoted pattern comes back as one string: it may hold spaces.
    const patterns = Array.isArray(line.value) ? line.value.map((v) => v.val) : [line.value];
    const included = patterns
      .map((p) => (p.startsWith('~/') ? join(env.home, p.slice(2)) : isAbsolute(p) ? p : join(env.home, '.ssh', p)))
      .flatMap((p) => globFiles(p))
      .flatMap((file) => [...parseConfigFile(file, env, depth + 1)]);
    lines.splice(i, 1, ...included);
    i += included.length - 1;
  }
}

type Computed = Record<string, string | string[]>;

function lookup(config: SSHConfig | undefined, host: string, user: string | undefined): Computed {
  if (!config) return {};
  // Keys come back lower-cased, as OpenSSH treats keywords. `Match exec` is not run: it
  // would fork a shell per lookup, synchronously.
  return config.compute({ Host: host, ...(user !== undefined ? { User: user } : {}) }, { ignoreCase: true, matchExec: false });
}

function one(c: Computed, key: string): string | undefined {
  const v = c[key];
  return Array.isArray(v) ? v[0] : v;
}

function many(c: Computed, key: string): string[] {
  const v = c[key];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

interface TokenContext {
  alias: string;
  host: string;
  port: number;
  user: string;
}

// ssh_config(5) TOKENS and a leading `~`, for the keywords that take paths.
export function expandPath(value: string, env: LocalEnv, t: TokenContext): string {
  let out = value.replace(/%([%dhnpru])/g, (_, c: string) => {
    switch (c) {
      case '%':
        return '%';
      case 'd':
        return env.home;
      case 'h':
        return t.host;
      case 'n':
        return t.alias;
      case 'p':
        return String(t.port);
      case 'r':
        return t.user;
      default:
        return env.localUser;
    }
  });
  if (out === '~') out = env.home;
  else if (out.startsWith('~/')) out = join(env.home, out.slice(2));
  return out;
}

function parsePort(value: string | undefined, where: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw inputError(`bad port ${JSON.stringify(value)} in ${where}`);
  return n;
}

// One ProxyJump entry: `[user@]host[:port]` or `ssh://[user@]host[:port]`, IPv6 in brackets.
export function parseJumpSpec(spec: string): { user?: string; host: string; port?: number } {
  let rest = spec.trim().replace(/^ssh:\/\//, '');
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  let host = rest;
  let port: number | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1] ?? '';
    port = parsePort(bracketed[2], `ProxyJump ${spec}`);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon >= 0 && rest.indexOf(':') === colon) {
      host = rest.slice(0, colon);
      port = parsePort(rest.slice(colon + 1), `ProxyJump ${spec}`);
    }
  }
  if (!host) throw inputError(`bad ProxyJump entry ${JSON.stringify(spec)}`);
  return { ...(user ? { user } : {}), host, ...(port !== undefined ? { port } : {}) };
}

// How known_hosts names the endpoint a config lookup found. CheckHostIP is on unless the
// config turns it off: it only ever warns, so it costs nothing when all is well.
function hostKeySettings(c: Computed): Pick<Endpoint, 'hostKeyAlias' | 'checkHostIp'> {
  return { hostKeyAlias: one(c, 'hostkeyalias'), checkHostIp: one(c, 'checkhostip')?.toLowerCase() !== 'no' };
}

function identityFiles(explicit: readonly string[], fromConfig: string[], env: LocalEnv): string[] {
  const defaults = DEFAULT_KEYS.map((k) => join(env.home, '.ssh', k));
  const all = [...explicit, ...fromConfig, ...defaults];
  return [...new Set(all)].filter((f) => explicit.includes(f) || env.exists(f));
}

export function resolveTarget(
  options: SshTargetOptions,
  config: SSHConfig | undefined,
  env: LocalEnv = localEnv(),
): ResolvedTarget {
  const lookupName = options.host ?? options.alias;
  const c = lookup(config, lookupName, options.user);
  if (one(c, 'proxycommand') !== undefined && one(c, 'proxycommand') !== 'none') {
    throw inputError(`ssh config sets ProxyCommand for ${lookupName}, which hostctl does not support`, {
      hint: 'use ProxyJump instead',
    });
  }
  const user = options.user ?? one(c, 'user') ?? env.localUser;
  const port = options.port ?? parsePort(one(c, 'port'), `ssh config (Port for ${lookupName})`) ?? 22;
  const hostName = one(c, 'hostname');
  const host = hostName ? hostName.replace(/%h/g, lookupName).replace(/%%/g, '%') : lookupName;
  const tokens: TokenContext = { alias: options.alias, host, port, user };

  const explicit = (options.privateKeyFiles ?? []).map((f) => expandPath(f, env, tokens));
  for (const f of explicit) {
    if (!env.exists(f)) {
      throw inputError(`private key file ${f} does not exist`, {
        where: `host ${options.alias}: ansible_ssh_private_key_file`,
      });
    }
  }
  const keys = identityFiles(explicit, many(c, 'identityfile').map((f) => expandPath(f, env, tokens)), env);

  const jumps: Endpoint[] = [];
  const proxyJump = options.proxyJump ?? one(c, 'proxyjump');
  if (proxyJump && proxyJump.toLowerCase() !== 'none') {
    for (const spec of proxyJump.split(',')) {
      const j = parseJumpSpec(spec);
      // Each hop gets its own config lookup (HostName, User, Port, IdentityFile); its own
      // ProxyJump is ignored, as OpenSSH does inside a -J chain.
      const jc = lookup(config, j.host, j.user);
      const jUser = j.user ?? one(jc, 'user') ?? env.localUser;
      const jPort = j.port ?? parsePort(one(jc, 'port'), `ssh config (Port for ${j.host})`) ?? 22;
      const jHostName = one(jc, 'hostname');
      const jHost = jHostName ? jHostName.replace(/%h/g, j.host) : j.host;
      const jTokens: TokenContext = { alias: j.host, host: jHost, port: jPort, user: jUser };
      const jKeys = identityFiles([], many(jc, 'identityfile').map((f) => expandPath(f, env, jTokens)), env);
      // The target's own keys come last: a bastion often takes the same key, and OpenSSH
      // users get that through the agent, which hostctl users may not run.
      jumps.push({
        label: j.host,
        host: jHost,
        port: jPort,
        user: jUser,
        identityFiles: [...new Set([...jKeys, ...explicit])],
        ...hostKeySettings(jc),
      });
    }
  }

  let knownHostsFiles: string[];
  if (options.knownHostsFile !== undefined) {
    // An explicit file stands alone: what it says is all that is trusted.
    knownHostsFiles = [expandPath(options.knownHostsFile, env, tokens)];
  } else {
    const user = many(c, 'userknownhostsfile').flatMap((v) => v.split(/\s+/)).filter(Boolean);
    const global = many(c, 'globalknownhostsfile').flatMap((v) => v.split(/\s+/)).filter(Boolean);
    knownHostsFiles = [
      ...(user.length > 0 ? user : ['~/.ssh/known_hosts', '~/.ssh/known_hosts2']),
      ...(global.length > 0 ? global : ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']),
    ].map((f) => expandPath(f, env, tokens));
  }

  const strict = one(c, 'stricthostkeychecking')?.toLowerCase();
  const configTimeout = one(c, 'connecttimeout');
  return {
    label: options.alias,
    host,
    port,
    user,
    identityFiles: keys,
    ...hostKeySettings(c),
    jumps,
    knownHostsFiles,
    hashKnownHosts: one(c, 'hashknownhosts')?.toLowerCase() === 'yes',
    // accept-new (and "no", which OpenSSH treats as at least that) from the config; a
    // changed key is refused whatever it says.
    acceptNewHostKeys: options.acceptNewHostKeys ?? (strict === 'accept-new' || strict === 'no' || strict === 'off'),
    connectTimeoutMs:
      options.connectTimeoutMs ??
      (configTimeout !== undefined && Number(configTimeout) > 0 ? Number(configTimeout) * 1000 : DEFAULT_CONNECT_TIMEOUT_MS),
  };
}

// ansible_ssh_args / _common_args / _extra_args as ssh would read them: split like a POSIX
// shell (Ansible uses shlex.split), then `-o Key=Value` (or `Key Value`), `-J`, `-p`, `-i`,
// `-l`. The first value of an option wins, as in ssh; IdentityFile adds up. What hostctl does
// not do is refused by name: an option silently dropped could mean a different host, or
// less checking than asked for.
export interface SshArgs {
  proxyJump?: string;
  port?: number;
  user?: string;
  identityFiles: string[];
  strictHostKeyChecking?: 'yes' | 'accept-new' | 'no';
  userKnownHostsFile?: string;
  serverAliveIntervalMs?: number;
  connectTimeoutMs?: number;
}

export interface SshArgsText {
  text: string;
  // "<file>: <variable>" or the flag, for messages.
  where: string;
}

// Options that only tune how Ansible drives the ssh binary (connection sharing, compression):
// hostctl keeps one connection per host for the whole run, so they change nothing.
const NO_EFFECT_OPTIONS = new Set(['controlmaster', 'controlpersist', 'controlpath', 'compression']);
const NO_EFFECT_FLAGS = new Set(['-C', '-q', '-T', '-n']);

export function parseSshArgs(texts: readonly SshArgsText[]): SshArgs {
  const out: SshArgs = { identityFiles: [] };
  for (const { text, where } of texts) {
    const words = shellSplit(text, where);
    for (let i = 0; i < words.length; i++) {
      const word = words[i]!;
      const flag = /^-([oJpil])(.*)$/s.exec(word);
      if (!flag) {
        if (NO_EFFECT_FLAGS.has(word)) continue;
        throw inputError(`${where}: ssh argument ${JSON.stringify(word)} is not supported by hostctl`, {
          hint: 'hostctl understands -o Key=Value (ProxyJump, Port, User, IdentityFile, StrictHostKeyChecking, UserKnownHostsFile, ServerAliveInterval, ConnectTimeout), -J, -p, -i, -l; other settings go in ~/.ssh/config',
        });
      }
      const letter = flag[1]!;
      const value = flag[2] || words[++i];
      if (value === undefined) throw inputError(`${where}: ssh argument -${letter} needs a value`);
      if (letter === 'o') sshOption(out, value, where);
      else sshOption(out, `${{ J: 'ProxyJump', p: 'Port', i: 'IdentityFile', l: 'User' }[letter]}=${value}`, where);
    }
  }
  return out;
}

function sshOption(out: SshArgs, option: string, where: string): void {
  const m = /^\s*([A-Za-z]+)\s*(?:=|\s)\s*(.*?)\s*$/s.exec(option);
  if (!m || m[2] === '') throw inputError(`${where}: cannot read ssh option ${JSON.stringify(option)}`, { hint: 'write -o Key=Value' });
  const [, name, value] = m as unknown as [string, string, string];
  const key = name.toLowerCase();
  const at = `${where}: -o ${name}`;
  const seconds = () => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw inputError(`${at}: ${JSON.stringify(value)} is not a number of seconds`);
    return n * 1000;
  };
  switch (key) {
    case 'proxyjump':
      // Checked here, so a bad entry names the variable it came from.
      try {
        if (value.toLowerCase() !== 'none') for (const spec of value.split(',')) parseJumpSpec(spec);
      } catch (error) {
        throw inputError(`${at}: ${(error as Error).message}`, { cause: error });
      }
      out.proxyJump ??= value;
      return;
    case 'port':
      out.port ??= parsePort(value, at);
      return;
    case 'user':
      out.user ??= value;
      return;
    case 'identityfile':
      out.identityFiles.push(value);
      return;
    case 'stricthostkeychecking': {
      const v = value.toLowerCase();
      const level = v === 'yes' || v === 'ask' ? 'yes' : v === 'accept-new' ? 'accept-new' : v === 'no' || v === 'off' ? 'no' : undefined;
      if (!level) throw inputError(`${at}: ${JSON.stringify(value)} is not yes, accept-new or no`);
      out.strictHostKeyChecking ??= level;
      return;
    }
    case 'userknownhostsfile':
      if (value.split(/\s+/).includes('/dev/null')) {
        // With nothing remembered, every key is new on every run: no check at all.
        throw inputError(`${at}=/dev/null would make hostctl trust whatever key a host presents on every run`, {
          hint: 'remove it: hostctl records a new key in ~/.ssh/known_hosts (or hostctl_known_hosts_file) and refuses a changed one',
        });
      }
      out.userKnownHostsFile ??= value.split(/\s+/)[0];
      return;
    case 'serveraliveinterval':
      out.serverAliveIntervalMs ??= seconds();
      return;
    case 'connecttimeout':
      out.connectTimeoutMs ??= seconds();
      return;
    case 'proxycommand':
      throw inputError(`${at} is not supported by hostctl`, { hint: 'use ProxyJump instead (-o ProxyJump=bastion or -J bastion)' });
    default:
      if (NO_EFFECT_OPTIONS.has(key)) return;
      throw inputError(`${at} is not supported by hostctl`, {
        hint: 'supported: ProxyJump, Port, User, IdentityFile, StrictHostKeyChecking, UserKnownHostsFile, ServerAliveInterval, ConnectTimeout (ControlMaster, ControlPersist, ControlPath, Compression have no effect); other settings go in ~/.ssh/config',
      });
  }
}

// POSIX shell words, as Python's shlex.split: quotes, backslash escapes, no expansion.
export function shellSplit(text: string, where: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw inputError(`${where}: unclosed ' quote`);
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (ch === '"') {
      word ??= '';
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\' && '"\\$`\n'.includes(text[i + 1] ?? '')) i++;
        word += text[i];
      }
      if (i >= text.length) throw inputError(`${where}: unclosed " quote`);
    } else if (ch === '\\') {
      word = (word ?? '') + (text[++i] ?? '');
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}
