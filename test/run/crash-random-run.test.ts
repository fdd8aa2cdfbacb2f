import { it } from 'vitest';
import { TRIALS, randomKillTrials } from './random-kills.js';

/** Promise 3 under random SIGKILLs over whole runs, recovered by `lifeboat run` (see random-kills.ts). */
it(`${TRIALS} random kills over a run, each recovered by run`, async () => {
  await randomKillTrials('run', 'cr_run');
}, 900_000);
