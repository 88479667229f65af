import { createHmac, randomInt } from 'node:crypto';
import { generateSecret, generateURI, verifySync } from 'otplib';
import QRCode from 'qrcode';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticatorTransportFuture,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { TwoFactorRepo, WebauthnRow } from '../db/two-factor.ts';
import type { SecretBox } from './secret-box.ts';
import type { UserRow } from './users.ts';

/** The relying party of a request: the panel name the browser used (server/auth/webauthn-rp.ts). */
export interface RelyingParty {
  id: string;
  origin: string;
}

export const RECOVERY_CODE_COUNT = 10;
/** Codes are drawn from letters and digits that cannot be mistaken for each other. */
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const CHALLENGE_TTL_MS = 5 * 60_000;
/** A TOTP code is accepted one period early or late (clock drift), never twice. */
const TOTP_TOLERANCE_S = 30;

/** The transports a credential was registered with (stored as JSON), only values WebAuthn defines. */
function storedTransports(json: string | null): { transports?: AuthenticatorTransportFuture[] } {
  if (!json) return {};
  const known: readonly string[] = KNOWN_TRANSPORTS;
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed)) return {};
  const list = parsed.filter(
    (t): t is AuthenticatorTransportFuture => typeof t === 'string' && known.includes(t),
  );
  return { transports: list };
}
const KNOWN_TRANSPORTS: readonly AuthenticatorTransportFuture[] = [
  'ble',
  'cable',
  'hybrid',
  'internal',
  'nfc',
  'smart-card',
  'usb',
];

export class TwoFactorError extends Error {}

const normalizeRecovery = (code: string): string => code.toLowerCase().replace(/[\s-]/g, '');

/**
 * Two-factor sign-in (docs/security.md §12): TOTP (RFC 6238, otplib; the seed sealed at rest),
 * WebAuthn passkeys and security keys (@simplewebauthn/server), one-time recovery codes (only
 * their HMACs are stored). The routes are in server/auth/second-factor.ts (sign-in) and
 * server/http/two-factor-page.ts (enrolment, admin reset).
 */
export class TwoFactor {
  constructor(
    readonly repo: TwoFactorRepo,
    private readonly box: SecretBox,
    private readonly recoveryKey: Buffer,
  ) {}

  status(userId: number): { totp: boolean; credentials: WebauthnRow[]; recoveryLeft: number } {
    const t = this.repo.totp(userId);
    return {
      totp: t !== null && t.confirmed_at !== null,
      credentials: this.repo.credentials(userId),
      recoveryLeft: this.repo.unusedRecoveryCodes(userId),
    };
  }

  /** Whether the user has a second factor (a confirmed TOTP or a passkey/security key). */
  hasFactor(userId: number): boolean {
    const s = this.status(userId);
    return s.totp || s.credentials.length > 0;
  }

  /** Whether the panel's setting requires this user to use a second factor. */
  required(user: Pick<UserRow, 'role'>): boolean {
    const r = this.repo.requirement();
    return r === 'everyone' || (r === 'admins' && user.role === 'admin');
  }

  /** Whether the user must enrol a second factor before using the panel. */
  mustEnroll(user: Pick<UserRow, 'id' | 'role'>): boolean {
    return this.required(user) && !this.hasFactor(user.id);
  }

  // --- TOTP ---------------------------------------------------------------------------------

  /** A new, unconfirmed seed: the QR code and the text to type, shown in this reply only. */
  async startTotp(
    user: Pick<UserRow, 'id' | 'username'>,
  ): Promise<{ secret: string; uri: string; qr: string }> {
    const secret = generateSecret();
    this.repo.putTotp(user.id, this.box.seal(secret, `totp:${user.id}`));
    const uri = generateURI({ issuer: 'PonIO', label: user.username, secret });
    // A data: URL image (CSP img-src allows data:), no script: the page works without JavaScript.
    const qr = await QRCode.toDataURL(uri, { errorCorrectionLevel: 'M', margin: 2, width: 220 });
    return { secret, uri, qr };
  }

  private seed(userId: number): { secret: string; confirmed: boolean; lastStep: number | null } | null {
    const row = this.repo.totp(userId);
    if (!row) return null;
    const secret = this.box.open(row.secret_enc, `totp:${userId}`);
    return secret === null ? null : { secret, confirmed: row.confirmed_at !== null, lastStep: row.last_step };
  }

  private check(secret: string, code: string, after: number | null): number | null {
    if (!/^\d{6}$/.test(code)) return null;
    const r = verifySync({
      secret,
      token: code,
      epochTolerance: TOTP_TOLERANCE_S,
      ...(after === null ? {} : { afterTimeStep: after }),
    });
    return r.valid && 'timeStep' in r ? r.timeStep : null;
  }

  /**
   * Confirms an enrolment with its first code. Returns fresh recovery codes when the user had
   * none left (shown once). Throws TwoFactorError with a sentence.
   */
  confirmTotp(userId: number, code: string): { recoveryCodes: string[] | null } {
    const s = this.seed(userId);
    if (!s || s.confirmed)
      throw new TwoFactorError('Start the authenticator set-up again (its code expired).');
    const step = this.check(s.secret, code.trim(), null);
    if (step === null)
      throw new TwoFactorError(
        'That code is not right. Check the clock of your phone and type the current code.',
      );
    this.repo.confirmTotp(userId, step);
    return {
      recoveryCodes: this.repo.unusedRecoveryCodes(userId) === 0 ? this.newRecoveryCodes(userId) : null,
    };
  }

  /** A sign-in code: valid for a confirmed seed, and never the same time step twice. */
  verifyTotp(userId: number, code: string): boolean {
    const s = this.seed(userId);
    if (!s || !s.confirmed) return false;
    const step = this.check(s.secret, code.trim(), s.lastStep);
    return step !== null && this.repo.useTotpStep(userId, step);
  }

  removeTotp(userId: number): boolean {
    return this.repo.deleteTotp(userId);
  }

  // --- recovery codes -------------------------------------------------------------------------

  private hashRecovery(userId: number, code: string): string {
    return createHmac('sha256', this.recoveryKey)
      .update(`${userId}\0${normalizeRecovery(code)}`)
      .digest('hex');
  }

  /** Ten new codes (the old ones stop working); only their HMACs are kept. */
  newRecoveryCodes(userId: number): string[] {
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => {
      let s = '';
      for (let i = 0; i < 12; i++) s += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
      return `${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8)}`;
    });
    this.repo.setRecoveryCodes(
      userId,
      codes.map((c) => this.hashRecovery(userId, c)),
    );
    return codes;
  }

  /** Uses a recovery code up (true once per code). */
  useRecoveryCode(userId: number, code: string): boolean {
    const n = normalizeRecovery(code);
    if (!/^[a-z0-9]{12}$/.test(n)) return false;
    return this.repo.useRecoveryCode(userId, this.hashRecovery(userId, n));
  }

  // --- WebAuthn -------------------------------------------------------------------------------

  async registrationOptions(
    user: Pick<UserRow, 'id' | 'username'>,
    rp: RelyingParty,
  ): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const opts = await generateRegistrationOptions({
      rpName: 'PonIO',
      rpID: rp.id,
      userName: user.username,
      userID: new TextEncoder().encode(`ponio-user-${user.id}`),
      attestationType: 'none',
      excludeCredentials: this.repo.credentials(user.id).map((c) => ({
        id: c.credential_id,
        ...storedTransports(c.transports),
      })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
    });
    this.repo.putChallenge(opts.challenge, user.id, 'register', CHALLENGE_TTL_MS);
    return opts;
  }

  async verifyRegistration(userId: number, rp: RelyingParty, response: unknown, name: string): Promise<void> {
    const r = response as RegistrationResponseJSON;
    let v: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
    try {
      v = await verifyRegistrationResponse({
        response: r,
        expectedChallenge: (c) => this.repo.takeChallenge(c, userId, 'register'),
        expectedOrigin: rp.origin,
        expectedRPID: rp.id,
        requireUserVerification: false,
      });
    } catch (e) {
      throw new TwoFactorError(`The security key's answer was refused: ${(e as Error).message}`);
    }
    const ok = v.verified;
    const info = v.registrationInfo;
    if (!ok || !info) throw new TwoFactorError('The security key could not be verified.');
    this.repo.addCredential({
      userId,
      credentialId: info.credential.id,
      publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
      counter: info.credential.counter,
      transports: info.credential.transports,
      name,
    });
  }

  async authenticationOptions(
    userId: number,
    rp: RelyingParty,
  ): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const creds = this.repo.credentials(userId);
    if (creds.length === 0)
      throw new TwoFactorError('No passkey or security key is registered for this account.');
    const opts = await generateAuthenticationOptions({
      rpID: rp.id,
      userVerification: 'preferred',
      allowCredentials: creds.map((c) => ({
        id: c.credential_id,
        ...storedTransports(c.transports),
      })),
    });
    this.repo.putChallenge(opts.challenge, userId, 'sign-in', CHALLENGE_TTL_MS);
    return opts;
  }

  /** Verifies a sign-in assertion of one of the user's credentials (its challenge used once). */
  async verifyAuthentication(userId: number, rp: RelyingParty, response: unknown): Promise<boolean> {
    const r = response as AuthenticationResponseJSON;
    if (!r || typeof r !== 'object' || typeof r.id !== 'string') return false;
    const cred = this.repo.credentials(userId).find((c) => c.credential_id === r.id);
    if (!cred) return false;
    try {
      const v = await verifyAuthenticationResponse({
        response: r,
        expectedChallenge: (c) => this.repo.takeChallenge(c, userId, 'sign-in'),
        expectedOrigin: rp.origin,
        expectedRPID: rp.id,
        requireUserVerification: false,
        credential: {
          id: cred.credential_id,
          publicKey: new Uint8Array(Buffer.from(cred.public_key, 'base64url')),
          counter: cred.counter,
          ...storedTransports(cred.transports),
        },
      });
      if (!v.verified) return false;
      this.repo.credentialUsed(cred.id, v.authenticationInfo.newCounter);
      return true;
    } catch {
      return false;
    }
  }

  removeCredential(userId: number, id: number): WebauthnRow | null {
    return this.repo.deleteCredential(userId, id);
  }

  /** Admin reset / CLI: every factor of the user removed. */
  reset(userId: number): { totp: boolean; recoveryCodes: number; credentials: number } {
    return this.repo.resetAll(userId);
  }
}
