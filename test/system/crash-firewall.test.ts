// Crash safety of every firewall mutation: cases in test/system/crash/firewall.ts, run by the shared harness
// (test/helpers/crash.ts).
import { runCrashSuite } from '../helpers/crash.ts';
import suite from './crash/firewall.ts';

runCrashSuite(suite);
