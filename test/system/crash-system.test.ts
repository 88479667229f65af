// Crash safety of the system module's mutations (the trust events): cases in
// test/system/crash/system.ts, run by the shared harness (test/helpers/crash.ts).
import { runCrashSuite } from '../helpers/crash.ts';
import suite from './crash/system.ts';

runCrashSuite(suite);
