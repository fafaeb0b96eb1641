import type { EventSink } from '../core/events.js';

// A renderer consumes events as they come and may need to settle (listr2) at the end.
export interface Renderer {
  sink: EventSink;
  finish(): Promise<void>;
}
