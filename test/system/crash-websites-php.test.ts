// Crash safety of PHP per site: cases in test/system/crash/websites-php.ts, run by the shared
// harness (test/helpers/crash.ts).
import { runCrashSuite } from '../helpers/crash.ts';
import suite from './crash/websites-php.ts';

runCrashSuite(suite);
