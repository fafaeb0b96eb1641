// What every transport provides: one primitive, run a shell command. Everything else a
// resource needs (text exec, atomic put, get, batched stat) is built once on top of it in
// connection.ts, so the local and the SSH transport behave the same byte for byte.

export interface RunOptions {
  // Bytes fed to the command's stdin; secrets travel here, never in the command line.
  stdin?: Buffer | string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface RunResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface StartOptions extends RunOptions {
  // Leave stdin open after `stdin` was written, until the handle's endInput(): a command
  // that blocks on its stdin lives exactly as long as the connection (the run lock).
  holdInput?: boolean;
  // Output as it comes, for a command that reports before it ends.
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

// A command that was started: its result when it ends.
export interface Started {
  result: Promise<RunResult>;
  endInput(): void;
}

export interface Channel {
  // Human name for messages, e.g. "ssh root@10.200.0.2:22" or "local".
  readonly description: string;
  open(): Promise<void>;
  // Runs `command` with /bin/sh -c on the host, as the login user.
  run(command: string, options?: RunOptions): Promise<RunResult>;
  // The same, handing its output over as it comes.
  start(command: string, options?: StartOptions): Started;
  // The connection broke (it was not closed by us): commands fail until reconnect().
  readonly lost: boolean;
  // A new connection after a loss, with the same host key rules; nothing when not lost.
  reconnect(): Promise<void>;
  close(): Promise<void>;
}

// Privilege escalation as Ansible's become: sudo to `user`, the password fed on stdin.
export interface Become {
  user: string;
  password?: { reveal(): string } | undefined;
}
