// The booted tier's one prepared layer, made before its test files run (scripts/test.mjs runs
// this when the run includes test/booted): the cached Debian 12 root file system with every
// package the tests need (rootfs.ts) and the release they install (`npm run build`, ponio.ts),
// built side by side. On a fresh machine that is the cold cost of the tier (docs/development.md
// has the times); paying it here keeps it out of the first test file's time limit. Nothing here
// fails the run: when a piece cannot be made (not root, a package missing), the tests that need
// it fail with the reason.
import { cachedRootfs } from './rootfs.ts';
import { buildRelease } from './ponio.ts';

const t0 = Date.now();
const seconds = (): string => ((Date.now() - t0) / 1000).toFixed(0);
if (process.getuid?.() !== 0) {
  console.log('› booted tier: not root, nothing prepared (its tests will say so)');
} else {
  const [rootfs, release] = await Promise.allSettled([cachedRootfs(), buildRelease()]);
  for (const [what, r] of [
    ['root file system', rootfs],
    ['release', release],
  ] as const)
    console.log(
      r.status === 'fulfilled'
        ? `› booted tier: ${what} ${r.value}`
        : `› booted tier: no ${what} (the tests that need it will fail with the reason): ${String(r.reason).slice(0, 500)}`,
    );
  console.log(`› booted tier: prepared in ${seconds()} s`);
}
