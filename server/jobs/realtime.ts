import type { Server, Socket } from 'socket.io';
import type { JobChange, PanelEvents } from '../events.ts';

/** At most this often per job, browsers watching it hear that it changed. */
const RELAY_MS = 200;

/**
 * Live job progress for browsers (server/realtime/index.ts hooks it in): a socket sends
 * `watch job <id>` and joins room `job:<id>`; `jobs` joins the jobs list's room. Each job's
 * changes are relayed as `jobChange { jobId }` at most every 200 ms (the page then refreshes its
 * live region; a 1,000-host job does not mean 2,000 messages per browser).
 */
export function jobsRealtime(
  io: Server,
  events: PanelEvents,
  /** Whether a socket may watch a job (or, with 'all', the jobs list): host scopes (server/realtime). */
  mayWatch: (s: Socket, job: number | 'all') => boolean = () => true,
): { onConnection(s: Socket): void; close(): void } {
  const pending = new Map<number, NodeJS.Timeout>();
  const onJob = (c: JobChange): void => {
    if (pending.has(c.jobId)) return;
    pending.set(
      c.jobId,
      setTimeout(() => {
        pending.delete(c.jobId);
        io.to(`job:${c.jobId}`).to('jobs').emit('jobChange', { jobId: c.jobId });
      }, RELAY_MS),
    );
  };
  events.on('job', onJob);
  return {
    onConnection(socket) {
      socket.on('watch job', (id: unknown) => {
        for (const room of socket.rooms) if (room.startsWith('job:')) void socket.leave(room);
        if (typeof id === 'number' && Number.isSafeInteger(id) && id > 0) {
          if (mayWatch(socket, id)) void socket.join(`job:${id}`);
        } else if (id === 'all' && mayWatch(socket, 'all')) void socket.join('jobs');
      });
    },
    close() {
      events.off('job', onJob);
      for (const t of pending.values()) clearTimeout(t);
      pending.clear();
    },
  };
}
