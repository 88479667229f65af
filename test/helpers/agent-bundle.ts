import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './agent-process.ts';

const run = promisify(execFile);

/** What the agent bundle is built from (its content decides whether a cached build is current). */
const SOURCES = ['agent', 'shared', 'scripts/build.mjs', 'package-lock.json'];

async function sourceHash(): Promise<string> {
  const h = createHash('sha256');
  const add = async (rel: string): Promise<void> => {
    const p = path.join(ROOT, rel);
    const st = await fsp.stat(p);
    if (st.isDirectory()) {
      for (const name of (await fsp.readdir(p)).sort()) await add(path.join(rel, name));
    } else {
      h.update(rel)
        .update('\0')
        .update(await fsp.readFile(p))
        .update('\0');
    }
  };
  for (const s of SOURCES) await add(s);
  h.update(process.version);
  return h.digest('hex').slice(0, 16);
}

/**
 * The agent as it ships (`npm run build`: one esbuild bundle, dist/agent/ponio-agent.cjs), built
 * once per source state and kept in the temp dir, so test files that restart an agent many times
 * (the crash suites, test/helpers/crash.ts) start it in ~0.3 s instead of ~1 s through tsx.
 * Returns the command that runs it.
 */
export async function agentBundle(): Promise<[string, ...string[]]> {
  const dir = path.join(os.tmpdir(), `ponio-agent-bundle-${await sourceHash()}`);
  const file = path.join(dir, 'agent/ponio-agent.cjs');
  if (!existsSync(file)) {
    const tmp = `${dir}.${randomBytes(4).toString('hex')}.tmp`;
    await run(
      process.execPath,
      [path.join(ROOT, 'scripts/build.mjs'), '--out', tmp, '--agent-only', '--no-deb'],
      { cwd: ROOT, timeout: 300_000 },
    );
    try {
      await fsp.rename(tmp, dir);
    } catch {
      // Another test file built the same sources meanwhile: use theirs.
      await fsp.rm(tmp, { recursive: true, force: true });
    }
    // Bundles of older sources are of no use any more.
    for (const name of await fsp.readdir(os.tmpdir())) {
      const p = path.join(os.tmpdir(), name);
      if (!name.startsWith('ponio-agent-bundle-') || p === dir) continue;
      const st = await fsp.stat(p).catch(() => null);
      if (st && Date.now() - st.mtimeMs > 3_600_000) await fsp.rm(p, { recursive: true, force: true });
    }
  }
  return [process.execPath, file];
}
