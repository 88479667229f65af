import { RpcError } from '../../../shared/protocol/errors.ts';
import type { Exec } from '../../os/exec.ts';

const SHA512_CRYPT = /^\$6\$(rounds=[0-9]+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$/;

/**
 * SHA-512 crypt (`$6$`, glibc crypt(3)), the scheme Debian's proftpd verifies through libc.
 * Node has no crypt(3); `openssl passwd -6` computes it with a random 16-character salt. The
 * password goes through standard input (`-stdin`), never argv (argv is visible in /proc).
 */
export async function sha512Crypt(exec: Exec, password: string): Promise<string> {
  if (/[\r\n\0]/.test(password))
    throw new RpcError('invalid-argument', 'The password contains a line break.');
  const r = await exec('openssl', ['passwd', '-6', '-stdin'], { input: `${password}\n`, timeoutMs: 10_000 });
  const hash = r.stdout.trim();
  if (r.code !== 0 || !SHA512_CRYPT.test(hash))
    throw new RpcError(
      'internal',
      `openssl passwd -6 failed (exit ${r.code}); the password was not changed.`,
    );
  return hash;
}

export const isSha512Crypt = (hash: string): boolean => SHA512_CRYPT.test(hash);
