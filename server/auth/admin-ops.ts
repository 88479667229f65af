import type { PanelContext } from '../context.ts';
import type { Actor } from '../db/audit.ts';
import { isRole, type Role } from './roles.ts';
import { UserInputError, userView, type UserView } from './users.ts';
import type { ApiTokenRow } from '../auth/api-tokens.ts';
import { describeGrants, highestRole, validateGrants, type Grant } from './scope.ts';
import { parseSelector } from '../../shared/validate/labels.ts';
import { REQUIRE_2FA, type Require2fa } from '../db/two-factor.ts';

/**
 * Account and token administration shared by the dashboard, the REST API and the CLI: validates,
 * acts, writes the audit log (never a password or token), ends sessions where it must.
 * Errors are UserInputError with a sentence for the admin.
 */

function audit(
  ctx: PanelContext,
  actor: Actor,
  action: string,
  params: unknown,
  ok = true,
  message?: string,
): void {
  ctx.audit.write({ actor, hostId: null, action, params, ok, message: message ?? null });
}

export const TOKEN_NAME = /^[\w .@-]{1,64}$/;

export function parseUserId(v: unknown): number {
  const n = typeof v === 'string' && /^\d{1,12}$/.test(v) ? Number(v) : typeof v === 'number' ? v : NaN;
  if (!Number.isInteger(n) || n <= 0)
    throw new UserInputError('The user id must be a positive whole number.');
  return n;
}

export async function addUser(
  ctx: PanelContext,
  actor: Actor,
  input: { username: unknown; password: unknown; role: unknown; mustChangePassword?: boolean },
): Promise<UserView> {
  const row = await ctx.accounts.users.create(input);
  audit(ctx, actor, 'user add', { username: row.username, role: row.role });
  return userView(row);
}

export function updateUser(
  ctx: PanelContext,
  actor: Actor,
  id: number,
  fields: { role?: unknown; disabled?: unknown },
): UserView {
  if (
    actor.userId === id &&
    (fields.disabled === true || (fields.role !== undefined && fields.role !== 'admin'))
  )
    throw new UserInputError(
      'You cannot disable yourself or lower your own role; ask another admin.',
      'failed-precondition',
    );
  const row = ctx.accounts.users.update(id, fields);
  if (row.disabled === 1) ctx.accounts.endUserSessions(id);
  ctx.accounts.events.emit('grantsChanged');
  audit(ctx, actor, 'user update', { username: row.username, role: row.role, disabled: row.disabled === 1 });
  return userView(row);
}

/**
 * Replaces a user's host grants (server/auth/scope.ts). An empty list gives the user their role
 * on every host again; otherwise their role becomes the highest granted one. Admins are
 * panel-wide and take no grants.
 */
export function setGrants(ctx: PanelContext, actor: Actor, id: number, input: unknown): Grant[] {
  const u = ctx.accounts.users.get(id);
  if (!u) throw new UserInputError('No such user.', 'not-found');
  if (u.role === 'admin')
    throw new UserInputError(
      `${u.username} is an admin: admins act on the whole panel. Make them operator or viewer first.`,
      'failed-precondition',
    );
  const v = validateGrants(input);
  if (!v.ok) throw new UserInputError(v.message);
  ctx.accounts.grants.set(id, v.value, highestRole(v.value) ?? u.role);
  ctx.accounts.events.emit('grantsChanged');
  audit(ctx, actor, 'user grants', { username: u.username, grants: v.value }, true, describeGrants(v.value));
  return v.value;
}

export async function resetPassword(
  ctx: PanelContext,
  actor: Actor,
  id: number,
  password: unknown,
): Promise<void> {
  const u = ctx.accounts.users.get(id);
  if (!u) throw new UserInputError('No such user.', 'not-found');
  const self = actor.userId === id;
  // Someone else's new password is temporary: they choose their own at the next sign-in.
  await ctx.accounts.users.setPassword(id, password, { mustChange: !self });
  ctx.accounts.endUserSessions(id);
  audit(ctx, actor, 'user passwd', { username: u.username });
}

export function deleteUser(ctx: PanelContext, actor: Actor, id: number): void {
  if (actor.userId === id)
    throw new UserInputError('You cannot delete your own account.', 'failed-precondition');
  const u = ctx.accounts.users.get(id);
  if (!u) throw new UserInputError('No such user.', 'not-found');
  ctx.accounts.endUserSessions(id);
  const revokedTokens = ctx.accounts.users.delete(id);
  audit(ctx, actor, 'user delete', { username: u.username, revokedTokens });
}

export function createToken(
  ctx: PanelContext,
  actor: Actor,
  input: { name: unknown; role: unknown; expiresInDays?: unknown; selector?: unknown },
): { token: string; row: ApiTokenRow } {
  const name = typeof input.name === 'string' ? input.name.trim() : '';
  if (!TOKEN_NAME.test(name))
    throw new UserInputError('The token name must be 1–64 letters, digits, spaces or . _ @ -.');
  if (!isRole(input.role)) throw new UserInputError('The role must be admin, operator or viewer.');
  const raw = input.expiresInDays;
  let days: number | null = null;
  if (raw !== undefined && raw !== null && raw !== '') {
    days =
      typeof raw === 'string' && /^\d{1,4}$/.test(raw) ? Number(raw) : typeof raw === 'number' ? raw : NaN;
    if (!Number.isInteger(days) || days < 1 || days > 3650)
      throw new UserInputError(
        'The expiry must be a whole number of days between 1 and 3650 (or empty for none).',
      );
  }
  const role: Role = input.role;
  // A token limited to the hosts a label selector matches (within its creator's own scope).
  let selector: string | null = null;
  if (input.selector !== undefined && input.selector !== null && input.selector !== '') {
    const p = parseSelector(input.selector);
    if (!p.ok) throw new UserInputError(p.message);
    if (role === 'admin')
      throw new UserInputError('An admin token is panel-wide; a host selector needs operator or viewer.');
    selector = (input.selector as string).trim();
  }
  const created = ctx.apiTokens.create({
    selector,
    name,
    role,
    createdBy: actor.userId ?? null,
    expiresAt: days === null ? null : Date.now() + days * 86_400_000,
  });
  audit(ctx, actor, 'token create', { name, role, expiresInDays: days, selector });
  ctx.accounts.events.emit('grantsChanged');
  return created;
}

export function revokeToken(ctx: PanelContext, actor: Actor, id: number): void {
  const t = ctx.apiTokens.get(id);
  if (!t) throw new UserInputError('No such API token.', 'not-found');
  if (!ctx.apiTokens.revoke(id))
    throw new UserInputError('This token is already revoked.', 'failed-precondition');
  audit(ctx, actor, 'token revoke', { id, name: t.name });
}

export const tokenView = (t: ApiTokenRow) => ({
  id: t.id,
  name: t.name,
  prefix: t.prefix,
  role: t.role,
  createdBy: t.created_by,
  createdAt: t.created_at,
  expiresAt: t.expires_at,
  revokedAt: t.revoked_at,
  lastUsedAt: t.last_used_at,
  selector: t.selector,
  state: t.revoked_at ? 'revoked' : t.expires_at !== null && t.expires_at <= Date.now() ? 'expired' : 'live',
});

/**
 * Admin reset of a user who lost their device: every second factor (authenticator, passkeys,
 * recovery codes) removed, their sessions ended, audited. They sign in with the password next
 * (and enrol again if the panel requires two-factor).
 */
export function resetTwoFactor(ctx: PanelContext, actor: Actor, id: number): string {
  const u = ctx.accounts.users.get(id);
  if (!u) throw new UserInputError('No such user.', 'not-found');
  const r = ctx.twoFactor.reset(id);
  ctx.accounts.endUserSessions(id);
  const what = `${r.totp ? 'authenticator app, ' : ''}${r.credentials} passkey(s), ${r.recoveryCodes} recovery code(s)`;
  audit(ctx, actor, 'user 2fa reset', { username: u.username, ...r }, true, what);
  return `Two-factor sign-in of ${u.username} reset (${what} removed); they are signed out.`;
}

/** The "require two-factor" setting: off, admins or everyone (forces enrolment at next sign-in). */
export function setTwoFactorRequirement(ctx: PanelContext, actor: Actor, value: unknown): Require2fa {
  if (!(REQUIRE_2FA as readonly unknown[]).includes(value))
    throw new UserInputError(`The two-factor requirement is one of ${REQUIRE_2FA.join(', ')}.`);
  const v = value as Require2fa;
  ctx.twoFactor.repo.setRequirement(v);
  audit(ctx, actor, 'settings require 2fa', { require: v });
  return v;
}
