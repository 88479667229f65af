// Crash safety of every mysql mutation: cases in test/system/crash/mysql.ts, run by the shared harness
// (test/helpers/crash.ts).
import { runCrashSuite } from '../helpers/crash.ts';
import suite from './crash/mysql.ts';

runCrashSuite(suite);
