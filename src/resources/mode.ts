import { inputError } from '../core/errors.js';

// Modes are given as numbers (0o600) or octal strings ("0600", "600"), as in Ansible.
export function parseMode(mode: number | string, where: string): number {
  if (typeof mode === 'number') return mode;
  if (!/^0?[0-7]{3,4}$/.test(mode)) throw inputError(`${where}: mode "${mode}" is not an octal mode like "0644"`);
  return parseInt(mode, 8);
}

export const modeString = (mode: number) => mode.toString(8).padStart(4, '0');
