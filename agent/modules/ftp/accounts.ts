import { readFile } from 'node:fs/promises';

export interface Account {
  name: string;
  uid: number;
  gid: number;
}

/** The host's own accounts from /etc/passwd (name → uid/gid). Missing file → empty. */
export async function systemAccounts(file = '/etc/passwd'): Promise<Map<string, Account>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return new Map();
  }
  const out = new Map<string, Account>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || !f[0] || !/^[0-9]+$/.test(f[2] ?? '') || !/^[0-9]+$/.test(f[3] ?? '')) continue;
    out.set(f[0], { name: f[0], uid: Number(f[2]), gid: Number(f[3]) });
  }
  return out;
}

/** Group names from /etc/group (gid → name). */
export async function systemGroups(file = '/etc/group'): Promise<Map<number, string>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return new Map();
  }
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || !f[0] || !/^[0-9]+$/.test(f[2] ?? '')) continue;
    if (!out.has(Number(f[2]))) out.set(Number(f[2]), f[0]);
  }
  return out;
}

/** The first of `names` that exists on the host. */
export async function firstAccount(names: readonly string[]): Promise<Account | null> {
  const all = await systemAccounts();
  for (const n of names) {
    const a = all.get(n);
    if (a) return a;
  }
  return null;
}
