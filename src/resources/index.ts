// The built-in resources, by the name a role calls them with: `h.file(...)`, `h.apt(...)`.
import { apt } from './apt.js';
import { authorizedKey } from './authorized-key.js';
import { command } from './command.js';
import { directory } from './directory.js';
import { file } from './file.js';
import { daemonReload, service, unit } from './systemd.js';
import { sysctl } from './sysctl.js';
import { template } from './template.js';
import { group, user } from './user.js';
import { quadlet } from './quadlet.js';
import { wait } from './wait.js';

export const resources = {
  file,
  directory,
  template,
  apt,
  unit,
  service,
  daemonReload,
  command,
  wait,
  user,
  group,
  authorizedKey,
  sysctl,
  quadlet,
};
