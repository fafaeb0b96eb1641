import type { Renderer } from './renderer.js';

// One JSON object per line (--json): the event union as it is, already redacted.
export function jsonRenderer(stream: NodeJS.WritableStream = process.stdout): Renderer {
  return {
    sink: (e) => void stream.write(`${JSON.stringify(e)}\n`),
    finish: async () => {},
  };
}
