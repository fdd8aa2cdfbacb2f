import { it } from 'vitest';
import { TRIALS, randomKillTrials } from './random-kills.js';

/** Promise 3 under random SIGKILLs over whole runs, recovered by `lifeboat rollback` (see random-kills.ts). */
it(`${TRIALS} random kills over a run, each recovered by rollback`, async () => {
  await randomKillTrials('rollback', 'cr_rollback');
}, 900_000);
