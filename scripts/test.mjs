#!/usr/bin/env node
// npm test: type check, lint, format check, then every test tier in one `node --test` run (one summary).
//   node scripts/test.mjs [unit|integration|system|e2e|booted ...] [--no-check] [--only PATTERN]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TIERS = ['unit', 'integration', 'system', 'e2e', 'booted'];
const args = process.argv.slice(2);
const noCheck = args.includes('--no-check');
const onlyIdx = args.indexOf('--only');
const only = onlyIdx >= 0 ? args[onlyIdx + 1] : undefined;
// A tier name right after --only is the pattern, not a tier (onlyIdx is -1 without --only).
const tiers = args.filter((a, i) => TIERS.includes(a) && (onlyIdx < 0 || i !== onlyIdx + 1));
const selected = tiers.length > 0 ? tiers : TIERS;

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function findTests(dir) {
  const out = [];
  let entries = [];
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = path.join(dir, e);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

if (!noCheck) {
  console.log('› type check (tsc)');
  run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', root]);
  console.log('› lint (eslint)');
  run(process.execPath, [path.join(root, 'node_modules/eslint/bin/eslint.js'), '--max-warnings=0', root]);
  console.log('› format (prettier --check)');
  run(process.execPath, [
    path.join(root, 'node_modules/prettier/bin/prettier.cjs'),
    '--check',
    '--log-level=warn',
    root,
  ]);
}

let files = selected.flatMap((t) => findTests(path.join(root, 'test', t)));
if (only) files = files.filter((f) => f.includes(only));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// The booted tier's prepared layer (root file system, release) first, outside every file's time
// limit: on a fresh machine it is the tier's cold cost (test/helpers/booted/prepare.ts).
if (files.some((f) => f.includes(`${path.sep}test${path.sep}booted${path.sep}`)))
  run(process.execPath, ['--import', 'tsx', path.join(root, 'test/helpers/booted/prepare.ts')]);
console.log(`› tests: ${selected.join(', ')} (${files.length} files)`);
run(process.execPath, [
  '--import',
  'tsx',
  '--test',
  '--test-concurrency=1',
  // A hang guard per test file, not a time budget: crash-backups (21 kill points of a restore with
  // real restic and MariaDB) takes 4-5 min on 2 loaded cores, too close to the old 5 min.
  '--test-timeout=600000',
  ...files.map((f) => path.relative(root, f)),
]);
