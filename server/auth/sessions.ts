import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import type { Db } from '../db/database.ts';

export type FlashKind = 'success' | 'danger' | 'warning' | 'info';
export interface FlashMessage {
  kind: FlashKind;
  message: string;
}

export interface SessionData {
  userId: number | null;
  /** Synchronizer CSRF token of this session. */
  csrf: string;
  flash: FlashMessage[];
  createdAt: number;
  authAt: number | null;
}

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The dashboard session (set by the session middleware; absent on the API). */
      session?: PanelSession;
    }
  }
}

/** The session cookie: `__Host-` prefix = Secure, Path=/, no Domain (the panel is HTTPS only). */
export const SESSION_COOKIE = '__Host-ponio_sid';
/** Signed-in sessions end after this much inactivity. */
export const SESSION_IDLE_MS = 12 * 60 * 60 * 1000;
/** …and after this long at most. */
export const SESSION_MAX_MS = 7 * 24 * 60 * 60 * 1000;
/** Anonymous sessions (login form CSRF, flash) live briefly. */
const ANON_MS = 60 * 60 * 1000;

const hashSid = (sid: string): string => createHash('sha256').update(sid).digest('hex');
const newToken = (): string => randomBytes(32).toString('base64url');

/** Reads one cookie from a Cookie header (RFC 6265 pairs; the first occurrence wins). */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const v = part.slice(eq + 1).trim();
    return /^[A-Za-z0-9_-]{20,100}$/.test(v) ? v : null;
  }
  return null;
}

/** One browser session. Changes are written to SQLite at once (better-sqlite3 is synchronous). */
export class PanelSession {
  constructor(
    private readonly store: SessionStore,
    /** The secret in the cookie; only its SHA-256 is stored. */
    public sid: string,
    public data: SessionData,
    public expiresAt: number,
  ) {}

  get key(): string {
    return hashSid(this.sid);
  }

  save(): void {
    this.store.save(this);
  }

  /** True when `token` is this session's CSRF token (constant-time). */
  checkCsrf(token: unknown): boolean {
    if (typeof token !== 'string' || token.length !== this.data.csrf.length) return false;
    return timingSafeEqual(Buffer.from(token), Buffer.from(this.data.csrf));
  }
}

/** Sessions in the `sessions` table, keyed by SHA-256 of the cookie value (a DB leak yields no cookies). */
export class SessionStore {
  private lastSweep = 0;

  constructor(private readonly db: Db) {}

  create(userId: number | null = null): PanelSession {
    this.sweep();
    const now = Date.now();
    const s = new PanelSession(
      this,
      newToken(),
      { userId, csrf: newToken(), flash: [], createdAt: now, authAt: userId === null ? null : now },
      now + (userId === null ? ANON_MS : SESSION_IDLE_MS),
    );
    this.db
      .prepare('INSERT INTO sessions (sid, data, expires_at) VALUES (?, ?, ?)')
      .run(s.key, JSON.stringify(s.data), s.expiresAt);
    return s;
  }

  load(sid: string): PanelSession | null {
    const row = this.db.prepare('SELECT data, expires_at FROM sessions WHERE sid = ?').get(hashSid(sid)) as
      { data: string; expires_at: number } | undefined;
    if (!row) return null;
    const now = Date.now();
    let data: SessionData;
    try {
      data = JSON.parse(row.data) as SessionData;
    } catch {
      return null;
    }
    if (row.expires_at <= now || (data.authAt !== null && data.authAt + SESSION_MAX_MS <= now)) {
      this.db.prepare('DELETE FROM sessions WHERE sid = ?').run(hashSid(sid));
      return null;
    }
    const s = new PanelSession(this, sid, data, row.expires_at);
    // Sliding expiry, written at most once a minute.
    const wanted = now + (data.userId === null ? ANON_MS : SESSION_IDLE_MS);
    if (wanted - s.expiresAt > 60_000) {
      s.expiresAt = wanted;
      this.save(s);
    }
    return s;
  }

  /**
   * The data of a live session by its stored key, without touching it (no sliding expiry): what
   * an open browser socket is re-checked against. Null when it ended, expired or hit its maximum.
   */
  peek(key: string): SessionData | null {
    const row = this.db.prepare('SELECT data, expires_at FROM sessions WHERE sid = ?').get(key) as
      { data: string; expires_at: number } | undefined;
    if (!row) return null;
    const now = Date.now();
    try {
      const data = JSON.parse(row.data) as SessionData;
      if (row.expires_at <= now || (data.authAt !== null && data.authAt + SESSION_MAX_MS <= now)) return null;
      return data;
    } catch {
      return null;
    }
  }

  save(s: PanelSession): void {
    this.db
      .prepare('UPDATE sessions SET data = ?, expires_at = ? WHERE sid = ?')
      .run(JSON.stringify(s.data), s.expiresAt, s.key);
  }

  /** New id and CSRF token for the same session (on login/logout: no session fixation). */
  regenerate(s: PanelSession, userId: number | null): void {
    this.db.prepare('DELETE FROM sessions WHERE sid = ?').run(s.key);
    const now = Date.now();
    s.sid = newToken();
    s.data = {
      userId,
      csrf: newToken(),
      flash: s.data.flash,
      createdAt: now,
      authAt: userId === null ? null : now,
    };
    s.expiresAt = now + (userId === null ? ANON_MS : SESSION_IDLE_MS);
    this.db
      .prepare('INSERT INTO sessions (sid, data, expires_at) VALUES (?, ?, ?)')
      .run(s.key, JSON.stringify(s.data), s.expiresAt);
  }

  destroy(s: PanelSession): void {
    this.db.prepare('DELETE FROM sessions WHERE sid = ?').run(s.key);
  }

  /** Signs a user out everywhere (password change, disabled, deleted), except `keep`. Returns the removed keys. */
  destroyForUser(userId: number, keep?: PanelSession): string[] {
    const rows = this.db
      .prepare("SELECT sid FROM sessions WHERE json_extract(data, '$.userId') = ?")
      .all(userId) as { sid: string }[];
    const gone = rows.map((r) => r.sid).filter((k) => k !== keep?.key);
    const del = this.db.prepare('DELETE FROM sessions WHERE sid = ?');
    for (const k of gone) del.run(k);
    return gone;
  }

  private sweep(): void {
    const now = Date.now();
    if (now - this.lastSweep < 10 * 60_000) return;
    this.lastSweep = now;
    this.db.prepare('DELETE FROM sessions WHERE expires_at <= ?').run(now);
  }
}

export function setSessionCookie(res: Response, s: PanelSession): void {
  res.cookie(SESSION_COOKIE, s.sid, { httpOnly: true, secure: true, sameSite: 'lax', path: '/' });
}

export function clearSessionCookie(res: Response): void {
  res.clearCookie(SESSION_COOKIE, { httpOnly: true, secure: true, sameSite: 'lax', path: '/' });
}

/** Loads the session named by the cookie (sessions are made only at sign-in; before it, see prelogin-csrf.ts). */
export function sessionMiddleware(store: SessionStore): RequestHandler {
  return (req, _res, next) => {
    const sid = readCookie(req.headers.cookie, SESSION_COOKIE);
    const s = sid ? store.load(sid) : null;
    if (s) req.session = s;
    next();
  };
}
