import { Listr, type ListrTaskWrapper, type ListrDefaultRenderer, type ListrSimpleRenderer } from 'listr2';
import type { EventOf, RunEvent } from '../core/events.js';
import { diffBlock, recapLines, seconds, taskLine } from './format.js';
import { makeStyle } from './style.js';
import type { Renderer } from './renderer.js';

type HostTask = ListrTaskWrapper<unknown, ListrDefaultRenderer, ListrSimpleRenderer>;

interface HostView {
  task?: HostTask;
  settle: (failed: string | undefined) => void;
  finished: Promise<string | undefined>;
  lastTask: string;
}

// The terminal view: one live line per host (role › task, wait attempts), hosts side by
// side; the changed and failed tasks with their diffs, and the recap, once all is done.
export function listrRenderer(stream: NodeJS.WriteStream = process.stdout): Renderer {
  const style = makeStyle(stream);
  const views = new Map<string, HostView>();
  const ends = new Map<string, EventOf<'host-end'>>();
  const notable: EventOf<'task-end'>[] = [];
  let running: Promise<unknown> = Promise.resolve();
  let recap: EventOf<'recap'> | undefined;

  const view = (host: string): HostView => {
    let v = views.get(host);
    if (!v) {
      let settle!: HostView['settle'];
      const finished = new Promise<string | undefined>((resolve) => (settle = resolve));
      v = { settle, finished, lastTask: '' };
      views.set(host, v);
    }
    return v;
  };
  const show = (host: string, text: string) => {
    const t = view(host).task;
    if (t) t.title = `${host}: ${text}`;
  };

  const handlers: { [K in RunEvent['type']]: (e: EventOf<K>) => void } = {
    'run-start': (e) => {
      stream.write(`${style.bold(`PLAY ${e.playbook}`)}${e.check ? ' (check mode: nothing is changed)' : ''}\n`);
      const list = new Listr(
        e.hosts.map((host) => ({
          title: `${host}: connecting`,
          task: async (_: unknown, task: HostTask) => {
            const v = view(host);
            v.task = task;
            const failed = await v.finished;
            if (failed) throw new Error(`${host}: ${failed}`);
            task.title = `${host}: done`;
          },
        })),
        { concurrent: true, exitOnError: false, rendererOptions: { collapseErrors: false }, silentRendererCondition: false },
      );
      running = list.run().catch(() => {});
    },
    'host-start': (e) => show(e.host, `connected to ${e.address}`),
    'task-start': (e) => {
      view(e.host).lastTask = `${e.role} › ${e.task}`;
      show(e.host, view(e.host).lastTask);
    },
    'task-progress': (e) => show(e.host, `${e.role} › ${e.task} (${e.message})`),
    waiting: (e) => show(e.host, e.task ? `${e.role} › ${e.task} (${e.message})` : e.message),
    'task-end': (e) => {
      if (e.status !== 'ok' && e.status !== 'skipped') notable.push(e);
      show(e.host, `${e.role} › ${e.task}: ${e.status} ${seconds(e.durationMs)}`);
    },
    'host-end': (e) => {
      ends.set(e.host, e);
      view(e.host).settle(e.unreachable ? 'unreachable' : e.failed ? 'failed' : undefined);
    },
    recap: (e) => {
      recap = e;
    },
  };

  return {
    sink: (e) => (handlers[e.type] as (e: RunEvent) => void)(e),
    finish: async () => {
      await running;
      for (const e of notable) {
        stream.write(`${taskLine(e, style)}\n`);
        if (e.diff) stream.write(`${diffBlock(e.diff, style)}\n`);
      }
      if (recap) stream.write(`${recapLines(recap.hosts, ends, recap.durationMs, style).join('\n')}\n`);
    },
  };
}
