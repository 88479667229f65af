import type { Server as HttpsServer } from 'node:https';
import { Server, type Socket } from 'socket.io';
import type { PanelContext } from '../context.ts';
import { readCookie, SESSION_COOKIE } from '../auth/sessions.ts';
import type { Role } from '../auth/roles.ts';
import type { Actor } from '../db/audit.ts';
import type { HostChange } from '../events.ts';
import type { HostStatus } from '../hosts/connection-manager.ts';
import type { AgentEvent } from '../../shared/protocol/index.ts';
import { jobsRealtime } from '../jobs/realtime.ts';

interface SocketData {
  userId: number;
  name: string;
  role: Role;
  sessionKey: string;
  /** Whether the page asked for overview changes ('watch overview'). */
  overview?: boolean;
}

/** What browsers receive for a host's connection state (no certificate or hello internals). */
export const stateView = (s: HostStatus) => ({
  id: s.id,
  state: s.state,
  lastError: s.lastError,
  agentVersion: s.hello?.agentVersion ?? null,
  modules: s.hello?.modules ?? [],
});

/** Same-origin check: the Origin header's host must be the Host the browser connected to. */
function sameOrigin(headers: Record<string, string | string[] | undefined>): boolean {
  const origin = headers.origin;
  const host = headers.host;
  if (typeof origin !== 'string' || typeof host !== 'string') return false;
  try {
    const u = new URL(origin);
    return u.protocol === 'https:' && u.host === host;
  } catch {
    return false;
  }
}

/** How often open browser sockets are re-checked against their session and user. */
export const SOCKET_RECHECK_MS = 2_000;

export interface Realtime {
  io: Server;
  close(): Promise<void>;
}

/**
 * Browser Socket.IO on the panel's HTTPS server. A socket is accepted only with a live session
 * cookie of an enabled user and a same-origin handshake (no cross-site WebSocket hijacking).
 * Browsers only listen: they join `hosts` (state of every host), `overview` and one `host:<id>`
 * room; PanelEvents hostState / hostChange / agentEvent are relayed to those rooms. Sockets of a
 * session that ends (logout, password change, user disabled) are disconnected at once; every
 * SOCKET_RECHECK_MS each socket is also re-checked against the database (session still there and
 * unexpired, user enabled, no password change pending), which catches changes made by the CLI
 * in another process and expiry.
 */
export function attachRealtime(ctx: PanelContext, server: HttpsServer): Realtime {
  const { accounts } = ctx;
  const io = new Server<Record<string, never>, Record<string, never>, Record<string, never>, SocketData>(
    server,
    {
      serveClient: true,
      cookie: false,
      maxHttpBufferSize: 16 * 1024,
      allowRequest: (req, cb) => cb(null, sameOrigin(req.headers)),
    },
  );
  /** The user a session key stands for now, or null when the socket must go (see revalidate). */
  const liveUser = (key: string) => {
    const data = accounts.sessions.peek(key);
    const user = data?.userId ? accounts.users.get(data.userId) : null;
    // A session that must change its password gets nothing but the password page.
    // Nor does one that must first enrol a second factor (the "require two-factor" setting).
    return user && user.disabled === 0 && user.must_change_password === 0 && !ctx.twoFactor.mustEnroll(user)
      ? user
      : null;
  };
  io.use((socket, next) => {
    const sid = readCookie(socket.request.headers.cookie, SESSION_COOKIE);
    const session = sid ? accounts.sessions.load(sid) : null;
    const user = session ? liveUser(session.key) : null;
    if (!session || !user) {
      next(new Error('unauthenticated'));
      return;
    }
    socket.data = { userId: user.id, name: user.username, role: user.role, sessionKey: session.key };
    next();
  });
  const actorOf = (s: Socket<never, never, never, SocketData>): Actor => ({
    kind: 'user',
    name: s.data.name,
    role: s.data.role,
    userId: s.data.userId,
  });
  /**
   * Host scopes (server/auth/host-scope.ts): a whole-fleet socket is in the rooms `hosts` and
   * `overview`; a scoped one only in `hosts:<id>` / `overview:<id>` of each host it may see, and
   * in `host:<id>` only while that host stays in scope. Re-run at connection, on every label or
   * grant change and on each recheck, so a host that leaves the scope stops sending at once.
   */
  const syncRooms = (s: Socket<never, never, never, SocketData>): void => {
    const actor = actorOf(s);
    const ids = ctx.scopes.visibleIds(actor);
    const want = new Set<string>();
    if (ids === null) {
      want.add('hosts');
      if (s.data.overview) want.add('overview');
    } else
      for (const id of ids) {
        want.add(`hosts:${id}`);
        if (s.data.overview) want.add(`overview:${id}`);
      }
    for (const room of s.rooms) {
      if (room === s.id) continue;
      if (room.startsWith('host:')) {
        if (ids !== null && !ids.has(room.slice(5))) void s.leave(room);
        continue;
      }
      if (room.startsWith('job:')) {
        if (!ctx.jobs.visibleTo(actor, Number(room.slice(4)))) void s.leave(room);
        continue;
      }
      if (room === 'jobs') {
        if (ids !== null) void s.leave(room);
        continue;
      }
      if (!want.has(room)) void s.leave(room);
    }
    for (const room of want) if (!s.rooms.has(room)) void s.join(room);
  };
  const syncAll = (): void => {
    for (const s of io.sockets.sockets.values()) syncRooms(s);
  };
  const jobs = jobsRealtime(io, ctx.events, (s, job) => {
    const actor = actorOf(s as Socket<never, never, never, SocketData>);
    return job === 'all' ? ctx.scopes.wholeFleet(actor) : ctx.jobs.visibleTo(actor, job);
  });
  // Sessions also end where no event reaches this process (`ponio-panel user passwd` / `user
  // disable` run from the CLI, expiry): every open socket is re-checked against the database.
  const revalidate = (): void => {
    for (const s of io.sockets.sockets.values()) {
      const user = liveUser(s.data.sessionKey);
      if (!user || user.id !== s.data.userId) s.disconnect(true);
      else {
        s.data.role = user.role;
        syncRooms(s);
      }
    }
  };
  const revalidateTimer = setInterval(revalidate, SOCKET_RECHECK_MS);
  revalidateTimer.unref();
  io.on('connection', (socket: Socket) => {
    const s = socket as Socket<never, never, never, SocketData>;
    jobs.onConnection(socket);
    syncRooms(s);
    socket.on('watch host', (hostId: unknown, ack?: unknown) => {
      for (const room of socket.rooms) if (room.startsWith('host:')) void socket.leave(room);
      // An out-of-scope host is refused exactly like an unknown one.
      const ok =
        typeof hostId === 'string' && hostId.length <= 200 && ctx.scopes.roleOn(actorOf(s), hostId) !== null;
      if (ok) void socket.join(`host:${hostId}`);
      if (typeof ack === 'function') (ack as (ok: boolean) => void)(ok);
    });
    socket.on('watch overview', () => {
      s.data.overview = true;
      syncRooms(s);
    });
  });

  const onState = (s: HostStatus): void => {
    io.to('hosts').to(`hosts:${s.id}`).emit('hostState', stateView(s));
  };
  const onChange = (c: HostChange): void => {
    io.to(`host:${c.hostId}`).to('overview').to(`overview:${c.hostId}`).emit('hostChange', c);
  };
  const onAgentEvent = (hostId: string, e: AgentEvent): void => {
    io.to(`host:${hostId}`).emit('agentEvent', { hostId, topic: e.topic, data: e.data });
  };
  const onHostsChanged = (): void => {
    // Labels or hosts changed: scopes may have too (before telling pages to refresh).
    syncAll();
    const scoped = [...io.sockets.adapter.rooms.keys()].filter((r) => r.startsWith('overview:'));
    io.to('overview').to(scoped).emit('hostsChanged');
  };
  const onSessionsEnded = (keys: string[]): void => {
    const ended = new Set(keys);
    for (const s of io.sockets.sockets.values()) if (ended.has(s.data.sessionKey)) s.disconnect(true);
  };
  ctx.events.on('hostState', onState);
  ctx.events.on('hostChange', onChange);
  ctx.events.on('agentEvent', onAgentEvent);
  ctx.events.on('hostsChanged', onHostsChanged);
  accounts.events.on('sessionsEnded', onSessionsEnded);
  accounts.events.on('grantsChanged', syncAll);

  return {
    io,
    async close() {
      jobs.close();
      ctx.events.off('hostState', onState);
      ctx.events.off('hostChange', onChange);
      ctx.events.off('agentEvent', onAgentEvent);
      ctx.events.off('hostsChanged', onHostsChanged);
      accounts.events.off('sessionsEnded', onSessionsEnded);
      accounts.events.off('grantsChanged', syncAll);
      clearInterval(revalidateTimer);
      io.disconnectSockets(true);
      // io.close() would also close the HTTPS server; the panel closes that itself.
      await Promise.resolve();
    },
  };
}
