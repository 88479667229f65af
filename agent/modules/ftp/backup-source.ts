import { validateFtpUsername } from '../../../shared/validate/ftp.ts';
import type { FtpBackupSource } from '../types.ts';
import { PONIO_GECOS, findUser, formatPasswd, parsePasswd, users, type PasswdLine } from './passwd.ts';

const under = (home: string, tree: string): boolean => home === tree || home.startsWith(`${tree}/`);

/**
 * What the backups module needs of the FTP accounts: the lines (hashes, never passwords) of the
 * accounts PonIO made whose home is inside a site tree, and putting missing ones back after a
 * restore. A restored line is parsed and checked like any other: a valid name, PonIO's own
 * entry, and a home inside the restored tree; anything else is skipped.
 */
export function ftpBackupSource(store: {
  read(): Promise<{ raw: Buffer | null; lines: PasswdLine[] }>;
  write(before: Buffer | null, lines: readonly PasswdLine[]): Promise<void>;
}): FtpBackupSource {
  return {
    async usersUnder(tree) {
      const { lines } = await store.read();
      return users(lines)
        .filter((u) => u.gecos === PONIO_GECOS && under(u.home, tree))
        .map((u) => formatPasswd([{ kind: 'user', user: u }]).trimEnd());
    },
    async restoreUsers(saved, fromTree, toTree) {
      const { raw, lines } = await store.read();
      const add: PasswdLine[] = [];
      for (const l of parsePasswd(`${saved.join('\n')}\n`)) {
        if (l.kind !== 'user' || l.user.gecos !== PONIO_GECOS || !under(l.user.home, fromTree)) continue;
        const v = validateFtpUsername(l.user.username);
        if (!v.ok || v.value !== l.user.username) continue;
        if (findUser(lines, l.user.username) || findUser(add, l.user.username)) continue;
        const home = toTree + l.user.home.slice(fromTree.length);
        add.push({ kind: 'user', user: { ...l.user, home } });
      }
      if (add.length > 0) await store.write(raw, [...lines, ...add]);
      return add.flatMap((l) => (l.kind === 'user' ? [l.user.username] : []));
    },
  };
}
