import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import path from 'node:path';

/** GET `/` from the sandbox Apache with a Host: header; a fresh connection every time. */
export function fetchSite(
  port: number,
  host: string,
  urlPath = '/',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, headers: { Host: host }, agent: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET http://${host}${urlPath} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The port of the sandbox Apache from a `url` such as http://127.0.0.1:41234/. */
export const portOf = (url: string | undefined): number => {
  const m = /^http:\/\/127\.0\.0\.1:(\d+)\/$/.exec(url ?? '');
  if (!m) throw new Error(`no sandbox Apache url in the reply: ${String(url)}`);
  return Number(m[1]);
};

/**
 * A digest of a directory tree: every entry's relative path, type, mode, owner, and the content
 * (files) or target (symlinks). Equal digests = byte-for-byte unchanged.
 */
export async function hashTree(
  root: string,
  skip: (rel: string) => boolean = () => false,
  /** Files whose presence, mode and owner count but not their content (logs Apache appends to). */
  presenceOnly: (rel: string) => boolean = () => false,
): Promise<string> {
  const h = createHash('sha256');
  const walk = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = (await fsp.readdir(dir)).sort();
    } catch {
      h.update(`missing ${path.relative(root, dir)}\n`);
      return;
    }
    for (const name of names) {
      const p = path.join(dir, name);
      const rel = path.relative(root, p);
      if (skip(rel)) continue;
      const st = await fsp.lstat(p);
      h.update(`${rel}\0${st.mode}\0${st.uid}\0${st.gid}\0`);
      if (st.isSymbolicLink()) h.update(`-> ${await fsp.readlink(p)}\n`);
      else if (st.isDirectory()) {
        h.update('dir\n');
        await walk(p);
      } else if (presenceOnly(rel)) h.update('file\n');
      else
        h.update(
          createHash('sha256')
            .update(await fsp.readFile(p))
            .digest('hex') + '\n',
        );
    }
  };
  await walk(root);
  return h.digest('hex');
}

/** Polls `fn` until it returns true (bounded); for the few checks that follow an async reload. */
export async function eventually(fn: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
