// Issue 15 item 6: the dashboard's live socket follows the session, against a real panel, the
// real `ponio-panel` CLI in another process and socket.io-client as the browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { startTestPanel, type TestPanel } from '../helpers/panel.ts';
import { WebClient } from '../helpers/web-client.ts';
import { SESSION_COOKIE } from '../../server/auth/sessions.ts';
import { SOCKET_RECHECK_MS } from '../../server/realtime/index.ts';

let t: TestPanel;
const sockets: Socket[] = [];

before(async () => {
  t = await startTestPanel();
});
after(async () => {
  for (const s of sockets) s.close();
  await t.close();
});

function browserSocket(c: WebClient): Socket {
  const s = io(t.url, {
    transports: ['websocket'],
    ca: t.panel.ctx.pki.ca.certPem,
    reconnection: false,
    forceNew: true,
    extraHeaders: { cookie: `${SESSION_COOKIE}=${c.cookies.get(SESSION_COOKIE) ?? ''}`, origin: t.url },
  } as Parameters<typeof io>[1]);
  sockets.push(s);
  return s;
}

const connected = (s: Socket): Promise<string> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), 10_000);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve('connected');
    });
    s.once('connect_error', (e) => {
      clearTimeout(timer);
      resolve(e.message);
    });
  });

/** Resolves with the disconnect reason, or 'still connected' after a bounded wait. */
const disconnected = (s: Socket, ms = SOCKET_RECHECK_MS * 5): Promise<string> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve('still connected'), ms);
    s.once('disconnect', (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });

/**
 * Emits hostsChanged in the panel (again every 200 ms: joining the room races the first one)
 * and reports whether the socket got it within 3 s.
 */
async function relays(s: Socket): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const got = await new Promise<boolean>((resolve) => {
    const until = Date.now() + 3_000;
    s.once('hostsChanged', () => resolve(true));
    const tick = (): void => {
      if (Date.now() > until) return resolve(false);
      t.panel.ctx.events.emit('hostsChanged');
      timer = setTimeout(tick, 200);
    };
    tick();
  });
  clearTimeout(timer);
  return got;
}

async function watchingSocket(c: WebClient): Promise<Socket> {
  const s = browserSocket(c);
  assert.equal(await connected(s), 'connected');
  s.emit('watch overview');
  assert.equal(await relays(s), true, 'host events reach the open socket');
  return s;
}

test('a session that must change its password gets no socket (and so no host events)', async () => {
  await t.panel.ctx.accounts.users.create({
    username: 'mustchange',
    password: 'temporary password 1',
    role: 'admin',
    mustChangePassword: true,
  });
  const c = new WebClient(t.url, t.panel.ctx.pki.ca.certPem);
  const login = await c.login('mustchange', 'temporary password 1');
  assert.equal(login.location, '/account/password');
  assert.equal(await connected(browserSocket(c)), 'unauthenticated');
});

test('`ponio-panel user passwd` from another process disconnects the open socket', async () => {
  const c = await t.signedIn('sockadmin', 'admin');
  const s = await watchingSocket(c);
  const gone = disconnected(s);
  const r = spawnSync(
    process.execPath,
    [
      path.resolve('bin/ponio-panel.js'),
      'user',
      'passwd',
      'sockadmin',
      '--password-stdin',
      '--data-dir',
      t.dataDir,
    ],
    { input: 'another good password\n', encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(await gone, 'io server disconnect');
  assert.equal(s.connected, false);
});

test('a session that expires while its socket is open is disconnected', async () => {
  const c = await t.signedIn('sockexpire', 'viewer');
  const s = await watchingSocket(c);
  const gone = disconnected(s);
  // The session's idle time runs out (as 12 h without a page view would).
  const sid = c.cookies.get(SESSION_COOKIE) ?? '';
  t.panel.ctx.db
    .prepare('UPDATE sessions SET expires_at = ? WHERE sid = ?')
    .run(Date.now() - 1, createHash('sha256').update(sid).digest('hex'));
  assert.equal(await gone, 'io server disconnect');
});
