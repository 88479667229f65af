import { promises as fsp } from 'node:fs';
import path from 'node:path';

/**
 * Reading proftpd's own configuration as data (never through a shell or `proftpd` itself): which
 * account the daemon runs as, from its `User` directive. Only what the ftp module needs to own the
 * AuthUserFile correctly; the file is never changed here.
 */

/** One directive of a configuration file, in order, at the depth of `<…>` blocks it sits in. */
export interface Directive {
  name: string;
  args: string;
  /** Enclosing blocks, outermost first, lower case (`['global']`, `['virtualhost', 'anonymous']`). */
  blocks: string[];
}

const unquote = (s: string): string =>
  s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;

/**
 * The directives of one file (pure). Comments and blank lines are skipped, `\` continuation lines
 * joined; `<IfModule …>`/`<IfDefine …>` are conditions, not contexts, so they do not count as
 * blocks (proftpd applies what is inside them to the enclosing context).
 */
export function parseDirectives(text: string): Directive[] {
  const out: Directive[] = [];
  const blocks: string[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    const joined = pending + raw;
    if (/\\$/.test(joined)) {
      pending = joined.slice(0, -1) + ' ';
      continue;
    }
    pending = '';
    const line = joined.trim();
    if (line === '' || line.startsWith('#')) continue;
    const close = /^<\/\s*([A-Za-z]+)\s*>$/.exec(line);
    if (close) {
      const name = (close[1] ?? '').toLowerCase();
      if (name !== 'ifmodule' && name !== 'ifdefine') blocks.pop();
      continue;
    }
    const open = /^<\s*([A-Za-z]+)\b[^>]*>$/.exec(line);
    if (open) {
      const name = (open[1] ?? '').toLowerCase();
      if (name !== 'ifmodule' && name !== 'ifdefine') blocks.push(name);
      continue;
    }
    const m = /^(\S+)(?:\s+(.*))?$/.exec(line);
    if (m) out.push({ name: (m[1] ?? '').toLowerCase(), args: (m[2] ?? '').trim(), blocks: [...blocks] });
  }
  return out;
}

/** Whether a directive applies to the main server (outside any block, or in `<Global>`). */
const isServerContext = (d: Directive): boolean => d.blocks.every((b) => b === 'global');

/** Reads a file's text, or null when it cannot be read; a directory's sorted entry names for `list`. */
export interface ConfReader {
  read(file: string): Promise<string | null>;
  list(dir: string): Promise<string[] | null>;
}

/** The real file system (read only): unreadable files are null, a directory lists its non-hidden entries, sorted. */
export const fileReader: ConfReader = {
  read: (file) => fsp.readFile(file, 'utf8').catch(() => null),
  list: (dir) =>
    fsp.readdir(dir).then(
      (names) => names.filter((n) => !n.startsWith('.')).sort(),
      () => null,
    ),
};

const MAX_INCLUDE_DEPTH = 4;

const firstArg = (args: string): string | null => unquote(args.split(/\s+/)[0] ?? '') || null;

/** `*` and `?` in the last path component of an Include (proftpd's common use: `conf.d/*.conf`). */
const globToRegExp = (glob: string): RegExp =>
  new RegExp(
    '^' +
      glob
        .split('')
        .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('') +
      '$',
  );

/**
 * The runtime user of the configuration that starts at `confFile`: the first `User` in the server
 * context (outside any block, or in `<Global>`; a `User` inside `<Anonymous>` or `<VirtualHost>` is
 * about those sessions, not the daemon), in reading order — proftpd itself uses the first one.
 * `Include` is followed in place: a file, a directory (every non-hidden file in it, sorted) or a
 * `*`/`?` pattern in the last component, relative paths against the including file's directory, at
 * most 4 levels deep. Null when no `User` is found.
 */
export async function runtimeUserOf(confFile: string, reader: ConfReader): Promise<string | null> {
  const visit = async (file: string, depth: number): Promise<string | null> => {
    const text = await reader.read(file);
    if (text === null) return null;
    for (const d of parseDirectives(text)) {
      if (!isServerContext(d)) continue;
      if (d.name === 'user') return firstArg(d.args);
      if (d.name !== 'include' || depth >= MAX_INCLUDE_DEPTH) continue;
      const target = path.resolve(path.dirname(file), unquote(d.args));
      const base = path.basename(target);
      let files: string[];
      if (/[*?]/.test(base)) {
        const re = globToRegExp(base);
        const names = (await reader.list(path.dirname(target))) ?? [];
        files = names.filter((n) => re.test(n)).map((n) => path.join(path.dirname(target), n));
      } else {
        const names = await reader.list(target);
        files = names === null ? [target] : names.map((n) => path.join(target, n));
      }
      for (const f of files) {
        const found = await visit(f, depth + 1);
        if (found !== null) return found;
      }
    }
    return null;
  };
  return visit(path.resolve(confFile), 0);
}
