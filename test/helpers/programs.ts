import { accessSync, constants } from 'node:fs';
import path from 'node:path';

const DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Absolute path of a program, or null. */
export function findProgram(name: string): string | null {
  for (const d of DIRS) {
    const p = path.join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

/**
 * A system test needs a real program: when it is missing the test fails (never skips) with a
 * message naming the Debian package that provides it. `.ci/run` installs these packages.
 */
export function requireProgram(name: string, debianPackage: string): string {
  const p = findProgram(name);
  if (!p)
    throw new Error(`${name} is not installed: apt-get install -y ${debianPackage} (bash .ci/run does this)`);
  return p;
}

export const isRoot = (): boolean => process.getuid?.() === 0;

/** Fails (never skips) when not root: system tests start services and network namespaces. */
export function requireRoot(what: string): void {
  if (!isRoot()) throw new Error(`${what} must run as root (it starts real services / network namespaces)`);
}
