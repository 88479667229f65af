// backups: backup and restore throughput of a site (200 MB of files) with a database (100 MB of
// rows) through the panel's REST API (HTTPS → panel → mutual-TLS RPC → agent → mariadb-dump
// streamed into restic, restic restore into staging + swap + Apache reload; the dump loaded into
// a staging database + RENAME TABLE), next to the same work done by hand in the same run: raw
// `mariadb-dump > file` + `restic backup` of the site tree and that file into a fresh repository,
// and raw `restic restore` + `mariadb < dump`. Target (issue 23): PonIO ≤ 1.2 × the raw reference.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fsp, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { startTestPanel } from '../test/helpers/panel.ts';
import { count, round, tempDir, type Bench, type BenchResult } from './lib.ts';

const MB = 2 ** 20;

/** Runs a program to its end; rejects on a non-zero exit (stdout to a file when given). */
function runTo(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  opts: { stdout?: string; stdin?: string } = {},
) {
  return new Promise<void>((resolve, reject) => {
    const p = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const written = opts.stdout
      ? new Promise<void>((res) => p.stdout.pipe(createWriteStream(opts.stdout as string)).on('finish', res))
      : (p.stdout.resume(), Promise.resolve());
    if (opts.stdin) void fsp.readFile(opts.stdin).then((b) => p.stdin.end(b));
    else p.stdin.end();
    p.on('close', (code) => {
      if (code !== 0) reject(new Error(`${file} ${args[0]}: ${err.slice(-400)}`));
      else void written.then(resolve);
    });
  });
}

const seconds = async (fn: () => Promise<unknown>): Promise<number> => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
};

export const bench: Bench = {
  name: 'backups',
  async run(): Promise<BenchResult[]> {
    const siteMb = count(200, 8);
    const dbMb = count(100, 4);
    const t = await startTestPanel();
    const work = tempDir('bk');
    let sandbox: string | null = null;
    try {
      const host = await t.addSandboxHost('bench-bk', { modules: { ftp: false, firewall: false } });
      sandbox = host.sandboxDir;
      const api = '/api/v1/hosts/bench-bk';
      const site = 'big.bench.test';
      const ok = async (method: string, url: string, body?: unknown, status = 200): Promise<unknown> => {
        const r = await t.request(method, url, body === undefined ? {} : { body });
        if (r.status !== status) throw new Error(`${method} ${url}: ${r.status} ${r.text.slice(0, 300)}`);
        return r.body;
      };
      await ok('POST', `${api}/websites`, { domain: site }, 201);
      const docroot = path.join(sandbox, 'var/www', site, 'public_html');
      // Incompressible, non-repeating content (restic deduplicates; random bytes do not dedupe).
      for (let i = 0; i < siteMb; i++) {
        await fsp.mkdir(path.join(docroot, `d${i % 10}`), { recursive: true });
        await fsp.writeFile(path.join(docroot, `d${i % 10}`, `f${i}.bin`), randomBytes(MB));
      }
      await ok('POST', `${api}/databases`, { name: 'bigdb' }, 201);
      const socketPath = path.join(sandbox, 'run/mysqld.sock');
      const c = await mysql.createConnection({ socketPath, user: 'root' });
      await c.query('CREATE TABLE bigdb.blobs (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB');
      const rowBytes = 256 * 1024;
      for (let i = 0; i < (dbMb * MB) / rowBytes; i += 4)
        await c.query('INSERT INTO bigdb.blobs VALUES (?, ?), (?, ?), (?, ?), (?, ?)', [
          i,
          randomBytes(rowBytes),
          i + 1,
          randomBytes(rowBytes),
          i + 2,
          randomBytes(rowBytes),
          i + 3,
          randomBytes(rowBytes),
        ]);
      await c.end();

      // The agent's repository made first (restic init, as the reference's is made outside its
      // timing): a small site backed up once.
      await ok('POST', `${api}/websites`, { domain: 'warm.bench.test' }, 201);
      await ok('POST', `${api}/backups`, { sites: ['warm.bench.test'] }, 201);
      // PonIO: back up the site and the database, then restore both into new names.
      const backupS = await seconds(() =>
        ok('POST', `${api}/backups`, { sites: [site], databases: ['bigdb'] }, 201),
      );
      const list = (await ok('GET', `${api}/backups`)) as {
        data: { snapshots: { id: string; kind: string; name: string; sizeBytes: number | null }[] };
      };
      const siteSnap = list.data.snapshots.find((s) => s.kind === 'site' && s.name === site);
      const dbSnap = list.data.snapshots.find((s) => s.kind === 'database');
      if (!siteSnap || !dbSnap) throw new Error('no snapshots listed');
      const restoreS =
        (await seconds(() =>
          ok('POST', `${api}/backups/${siteSnap.id}/restore`, { as: 'copy.bench.test' }),
        )) + (await seconds(() => ok('POST', `${api}/backups/${dbSnap.id}/restore`, { as: 'bigdb_copy' })));

      // The same work by hand: mariadb-dump to a file, restic backup of tree + file; restic
      // restore of both, mariadb < dump.
      const pw = path.join(work, 'pw');
      writeFileSync(pw, 'bench-password\n', { mode: 0o600 });
      const env = {
        PATH: process.env.PATH,
        HOME: work,
        RESTIC_REPOSITORY: path.join(work, 'repo'),
        RESTIC_PASSWORD_FILE: pw,
        RESTIC_CACHE_DIR: path.join(work, 'cache'),
      };
      execFileSync('restic', ['init'], { env, stdio: 'ignore' });
      const dump = path.join(work, 'bigdb.sql');
      const client = [`--socket=${socketPath}`, '--user=root'];
      const dumpS = await seconds(() =>
        runTo(
          '/usr/bin/mariadb-dump',
          [...client, '--single-transaction', '--quick', '--hex-blob', 'bigdb'],
          env,
          {
            stdout: dump,
          },
        ),
      );
      const resticS = await seconds(() =>
        runTo(
          '/usr/bin/restic',
          ['backup', '--host', 'bench', path.join(sandbox ?? '', 'var/www', site), dump],
          env,
        ),
      );
      const out = path.join(work, 'out');
      const rawRestoreS = await seconds(() =>
        runTo('/usr/bin/restic', ['restore', 'latest', '--target', out], env),
      );
      await runTo('/usr/bin/mariadb', [...client, '-e', 'CREATE DATABASE bigdb_raw'], env);
      const loadS = await seconds(() =>
        runTo('/usr/bin/mariadb', [...client, 'bigdb_raw'], env, { stdin: path.join(out, dump) }),
      );
      const refBackup = dumpS + resticS;
      const refRestore = rawRestoreS + loadS;
      const totalMb = siteMb + dbMb;
      return [
        {
          bench: 'backups',
          path: 'panel REST API → agent → restic (sandbox: private Apache + MariaDB)',
          site_mb: siteMb,
          db_mb: dbMb,
          backup_s: round(backupS, 2),
          backup_mb_s: round(totalMb / backupS, 1),
          ref_backup_s: round(refBackup, 2),
          ref_dump_s: round(dumpS, 2),
          ref_restic_backup_s: round(resticS, 2),
          backup_ratio: round(backupS / refBackup, 2),
          restore_s: round(restoreS, 2),
          restore_mb_s: round(totalMb / restoreS, 1),
          ref_restore_s: round(refRestore, 2),
          ref_restic_restore_s: round(rawRestoreS, 2),
          ref_load_s: round(loadS, 2),
          restore_ratio: round(restoreS / refRestore, 2),
          target_ratio: 1.2,
          meets_target: backupS <= 1.2 * refBackup && restoreS <= 1.2 * refRestore,
        },
      ];
    } finally {
      await t.close().catch(() => undefined);
      if (sandbox) rmSync(sandbox, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
      rmSync(t.dataDir, { recursive: true, force: true });
    }
  },
};
