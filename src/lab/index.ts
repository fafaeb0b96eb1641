// The lab's public surface: tests and benches import from here.
export { labUp, labDown, labStatus, labConfig, type Lab, type LabStatus, type TargetStatus } from './lab.js';
export { defaults, resolveConfig, type LabOptions, type LabConfig, type TargetConfig } from './options.js';
export { sshArgs, sshOptions, sshRun } from './ssh.js';
export { inventoryYaml, knownHostsText } from './inventory.js';
export { bootScript } from './target.js';
export { relayConfig } from './relay.js';
export { labImages, type ImagesOptions, type ImagesResult } from './images.js';
