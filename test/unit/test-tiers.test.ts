// scripts/test.mjs selects test tiers as docs/development.md says. The real script runs on a
// throwaway tree (its own test/<tier>/ files that only note that they ran), so nothing of the
// project's own suite runs here.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tmp.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TIERS = ['unit', 'integration', 'system', 'e2e'];
let tree: string;

before(() => {
  tree = tempDir('ponio-tiers-');
  cpSync(path.join(ROOT, 'scripts'), path.join(tree, 'scripts'), { recursive: true });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(tree, 'node_modules'));
  for (const tier of TIERS) {
    mkdirSync(path.join(tree, 'test', tier), { recursive: true });
    writeFileSync(
      path.join(tree, 'test', tier, `${tier}-mark.test.ts`),
      `import { test } from 'node:test';\nimport { appendFileSync } from 'node:fs';\n` +
        `test('${tier}', () => appendFileSync(process.env.PONIO_TIER_MARKS ?? '', '${tier}\\n'));\n`,
    );
  }
});

/** Runs `node scripts/test.mjs ARGS --no-check` on the throwaway tree; returns the tiers that ran. */
function ran(...args: string[]): string[] {
  const marks = path.join(tree, 'marks');
  rmSync(marks, { force: true });
  writeFileSync(marks, '');
  // Without the outer runner's NODE_TEST_CONTEXT, or the inner `node --test` reports to it instead.
  const { NODE_TEST_CONTEXT: _outer, ...env } = process.env;
  const r = spawnSync(process.execPath, [path.join(tree, 'scripts/test.mjs'), ...args, '--no-check'], {
    cwd: tree,
    env: { ...env, PONIO_TIER_MARKS: marks },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return readFileSync(marks, 'utf8').split('\n').filter(Boolean).sort();
}

test('one tier named first runs only that tier (npm run test:unit)', () => {
  assert.deepEqual(ran('unit'), ['unit']);
  assert.deepEqual(ran('e2e'), ['e2e']);
});

test('several tiers run exactly those', () => {
  assert.deepEqual(ran('unit', 'integration'), ['integration', 'unit']);
});

test('no tier runs every tier; --only filters by path, and its pattern is not a tier', () => {
  assert.deepEqual(ran(), [...TIERS].sort());
  assert.deepEqual(ran('--only', 'system'), ['system']);
  assert.deepEqual(ran('unit', '--only', 'unit'), ['unit']);
});
