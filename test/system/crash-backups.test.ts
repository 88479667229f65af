// Crash safety of every backups mutation: cases in test/system/crash/backups.ts, run by the shared
// harness (test/helpers/crash.ts).
import { runCrashSuite } from '../helpers/crash.ts';
import suite from './crash/backups.ts';

runCrashSuite(suite);
