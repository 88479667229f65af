// Crash safety of every websites mutation: cases in test/system/crash/websites.ts, run by the
// shared harness (test/helpers/crash.ts).
import { runCrashSuite } from '../helpers/crash.ts';
import suite from './crash/websites.ts';

runCrashSuite(suite);
