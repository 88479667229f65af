// Crash safety of every ftp mutation: cases in test/system/crash/ftp.ts, run by the shared harness
// (test/helpers/crash.ts).
import { runCrashSuite } from '../helpers/crash.ts';
import suite from './crash/ftp.ts';

runCrashSuite(suite);
