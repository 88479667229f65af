import { promises as fsp } from 'node:fs';
import { resolveUnder } from '../../os/files.ts';

/**
 * Whether a domain is a website on this host, as the ftp module needs to know it: its vhost is in
 * Apache's sites-available (PonIO's `<domain>.conf`, or any `*.conf` there — PonIO's or an
 * admin's — whose `ServerName` is the domain). Read-only and small on purpose: the ftp module
 * works without the websites module being loaded, and a deleted website (vhost gone, files
 * possibly kept) or a directory made by hand under the web root is not a website.
 */
export async function findVhost(sitesAvailable: string, domain: string): Promise<string | null> {
  let names: string[];
  try {
    names = (await fsp.readdir(sitesAvailable))
      .filter((n) => n.endsWith('.conf') && !n.startsWith('.'))
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
      return null;
    throw e;
  }
  const own = `${domain}.conf`;
  if (names.includes(own)) {
    const file = resolveUnder(sitesAvailable, own);
    if (await isFile(file)) return file;
  }
  for (const name of names) {
    const file = resolveUnder(sitesAvailable, name);
    if (!(await isFile(file))) continue;
    const text = await fsp.readFile(file, 'utf8').catch(() => '');
    if (serverNames(text).includes(domain)) return file;
  }
  return null;
}

const isFile = (p: string): Promise<boolean> =>
  fsp.stat(p).then(
    (st) => st.isFile(),
    () => false,
  );

/** The `ServerName`s of a vhost file (lower case, without quotes, scheme or port; comments skipped). */
export function serverNames(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const m = /^\s*ServerName\s+"?([^\s"]+)"?/i.exec(raw);
    if (m?.[1])
      out.push(
        m[1]
          .toLowerCase()
          .replace(/^[a-z][a-z0-9+.-]*:\/\//, '')
          .replace(/:\d+$/, ''),
      );
  }
  return out;
}
