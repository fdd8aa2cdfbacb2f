import { it } from 'vitest';
import { TRIALS, randomKillTrials } from './random-kills.js';

/** Promise 3 under random SIGKILLs over whole runs, recovered by `lifeboat status` (see random-kills.ts). */
it(`${TRIALS} random kills over a run, each recovered by status`, async () => {
  await randomKillTrials('status', 'cr_status');
}, 900_000);
