import { promises as fsp, type Stats } from 'node:fs';
import path from 'node:path';

/**
 * What `apache2 -t` does not check but Apache's start does: the log files. A graceful restart
 * opens every `ErrorLog`/`CustomLog` of the new config and exits when one cannot be opened
 * (AH00091/AH00015), taking every site down — e.g. a file dropped into sites-enabled by hand
 * whose ErrorLog names a directory passes the checker. The adapters run this on the files
 * Apache's own checker lists (`-D DUMP_INCLUDES`) before PonIO reloads, so such a config is
 * refused with the file at fault and Apache keeps serving the config it runs.
 */

/** One reason Apache would not start, with the file (and line) that causes it. */
export interface StartFault {
  file: string;
  line: number;
  message: string;
}

const LOG_DIRECTIVES = /^\s*(ErrorLog|CustomLog|TransferLog|GlobalLog)\s+("([^"]*)"|(\S+))/i;
const DEFINE = /^\s*Define\s+(\w+)\s+("([^"]*)"|(\S+))/i;

/** The files of `apache2 -t -D DUMP_INCLUDES`'s list ("  (*) /etc/apache2/apache2.conf", "    (12) /…"). */
export function parseIncludes(stdout: string): string[] {
  const out: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*\((?:\*|\d+)\)\s+(\/.*?)\s*$/.exec(line);
    if (m?.[1] !== undefined) out.push(m[1]);
  }
  return out;
}

/** The output of `-D DUMP_INCLUDES` without the include list (what the admin should read). */
export const withoutIncludeList = (text: string): string =>
  text
    .split('\n')
    .filter((l) => !/^Included configuration files:$/.test(l) && !/^\s*\((?:\*|\d+)\)\s+\//.test(l))
    .join('\n')
    .trim();

/** Logical lines (a trailing backslash continues a line), with their 1-based line numbers. */
function logicalLines(text: string): { n: number; text: string }[] {
  const out: { n: number; text: string }[] = [];
  const raw = text.split('\n');
  for (let i = 0; i < raw.length; i++) {
    const n = i + 1;
    let line = raw[i] ?? '';
    while (line.endsWith('\\') && i + 1 < raw.length) line = line.slice(0, -1) + (raw[++i] ?? '');
    out.push({ n, text: line });
  }
  return out;
}

/**
 * Debian's /etc/apache2/envvars sets `APACHE_LOG_DIR` and friends for apache2ctl: its plain
 * `export NAME=value` lines (with the default instance's empty $SUFFIX) are enough to resolve
 * `${APACHE_LOG_DIR}`. Anything it cannot resolve is left out of the check.
 */
export async function envvarsOf(file: string): Promise<Map<string, string>> {
  const vars = new Map<string, string>();
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const m = /^\s*export\s+([A-Z_][A-Z0-9_]*)=([^\s'"`;|&]*)\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined)
      vars.set(m[1], m[2].replace(/\$SUFFIX|\$\{SUFFIX\}/g, ''));
  }
  return vars;
}

async function statOrNull(p: string): Promise<Stats | null> {
  try {
    return await fsp.stat(p);
  } catch {
    return null;
  }
}

/** Why Apache could not open `file` for appending at start, or null when it can. */
async function logProblem(file: string): Promise<string | null> {
  const st = await statOrNull(file);
  if (st !== null) return st.isDirectory() ? 'is a directory' : null;
  const dir = path.dirname(file);
  const parent = await statOrNull(dir);
  if (parent === null) return `cannot be created: its directory ${dir} does not exist`;
  if (!parent.isDirectory()) return `cannot be created: ${dir} is not a directory`;
  return null;
}

/** A log file Apache opens at start, and the directive that names it. */
export interface LogTarget {
  file: string;
  line: number;
  directive: string;
  target: string;
}

/**
 * The log files named in `files` (in Apache's include order). Relative paths are under
 * `serverRoot`; `${VAR}` comes from the `Define`s of those files, then `env`. Piped logs, syslog
 * and values with a variable nobody defines are left out.
 */
export async function logTargets(
  files: readonly string[],
  serverRoot: string,
  env: ReadonlyMap<string, string> = new Map(),
): Promise<LogTarget[]> {
  const texts = await Promise.all(files.map((f) => fsp.readFile(f, 'utf8').catch(() => '')));
  const defines = new Map(env);
  const out: LogTarget[] = [];
  for (const [i, text] of texts.entries()) {
    const file = files[i] ?? '';
    for (const { n, text: line } of logicalLines(text)) {
      if (/^\s*#/.test(line)) continue;
      const d = DEFINE.exec(line);
      if (d?.[1] !== undefined) defines.set(d[1], d[3] ?? d[4] ?? '');
      const m = LOG_DIRECTIVES.exec(line);
      const value = m?.[3] ?? m?.[4] ?? '';
      if (m?.[1] === undefined || value === '' || value.startsWith('|') || /^syslog(:|$)/i.test(value))
        continue;
      let unresolved = false;
      const resolved = value.replace(/\$\{(\w+)\}/g, (_, name: string) => {
        const v = defines.get(name);
        if (v === undefined) unresolved = true;
        return v ?? '';
      });
      if (!unresolved)
        out.push({ file, line: n, directive: m[1], target: path.resolve(serverRoot, resolved) });
    }
  }
  return out;
}

/** The log files of `logs` Apache could not open at start (each must be a file, or creatable). */
export async function startFaults(logs: readonly LogTarget[]): Promise<StartFault[]> {
  const faults: StartFault[] = [];
  for (const l of logs) {
    const problem = await logProblem(l.target);
    if (problem !== null)
      faults.push({
        file: l.file,
        line: l.line,
        message: `${l.file} line ${l.line}: the ${l.directive} ${l.target} ${problem}`,
      });
  }
  return faults;
}

/**
 * The files whose log directives name a log Apache reported it could not open in `output`
 * ("could not open error log file /x.", "could not open transfer log file /y.").
 */
export function filesBlamed(output: string, logs: readonly LogTarget[]): LogTarget[] {
  const paths = new Set<string>();
  for (const m of output.matchAll(/could not open (?:\w+ )?log file (\/\S*?)\.?$/gim))
    if (m[1] !== undefined) paths.add(m[1]);
  return logs.filter((l) => paths.has(l.target));
}

/** The admin's sentence for faults (non-empty). */
export const describeFaults = (faults: readonly StartFault[]): string =>
  `Apache would not start with this configuration (apache2 -t does not open log files, a restart does): ${faults
    .map((f) => f.message)
    .join('; ')}. Fix or remove ${faults.length === 1 ? 'that file' : 'those files'}.`;
