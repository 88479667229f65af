// Crash safety of HTTPS per site: cases in test/system/crash/websites-https.ts, run by the shared
// harness (test/helpers/crash.ts).
import { runCrashSuite } from '../helpers/crash.ts';
import suite from './crash/websites-https.ts';

runCrashSuite(suite);
