// The SSH transport: what the engine imports.
export { SshChannel, type SshChannelOptions } from './channel.js';
export { type Prompter, ttyPrompter } from './prompt.js';
export { fingerprint } from './known-hosts.js';
