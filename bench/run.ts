// npm run bench [NAME …]: runs every bench/*.bench.ts (or those named) one after the other,
// prints one JSON object per result line on stdout and a short human table on stderr.
// BENCH_QUICK=1 uses small counts (a check that every bench runs; the figures mean nothing).
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { QUICK, ROOT, type Bench, type BenchResult } from './lib.ts';
import { humanTable } from './table.ts';
import { removeAgentBundle } from './agent.ts';

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const files = readdirSync(path.join(ROOT, 'bench'))
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
const all: BenchResult[] = [];
const started = Date.now();
const emit = (r: BenchResult): void => {
  all.push(r);
  process.stdout.write(`${JSON.stringify(r)}\n`);
};

emit({
  bench: 'machine',
  cpus: os.cpus().length,
  cpu_model: os.cpus()[0]?.model ?? 'unknown',
  memory_mb: Math.round(os.totalmem() / 2 ** 20),
  node: process.version,
  kernel: os.release(),
  load1: os.loadavg()[0] ?? 0,
  quick: QUICK,
});

let ran = 0;
let failed = 0;
for (const file of files) {
  const mod = (await import(pathToFileURL(path.join(ROOT, 'bench', file)).href)) as { bench?: Bench };
  const b = mod.bench;
  if (!b || typeof b.run !== 'function') {
    emit({ bench: file, error: 'does not export `bench = { name, run }`' });
    failed++;
    continue;
  }
  if (wanted.length > 0 && !wanted.includes(b.name)) continue;
  ran++;
  process.stderr.write(`› ${b.name}${QUICK ? ' (quick)' : ''}\n`);
  const t0 = Date.now();
  try {
    for (const r of await b.run()) emit(r);
  } catch (e) {
    failed++;
    emit({ bench: b.name, error: (e as Error).message.split('\n').slice(0, 5).join(' | ') });
  }
  process.stderr.write(`  ${b.name} took ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}
await removeAgentBundle();
if (wanted.length > 0 && ran === 0) {
  process.stderr.write(`no bench named ${wanted.join(', ')}\n`);
  process.exit(2);
}
process.stderr.write(
  `\n${humanTable(all)}\n\n${ran} benches in ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
);
process.exitCode = failed > 0 ? 1 : 0;
