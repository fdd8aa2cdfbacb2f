import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Files known to take minutes start first. Without vitest's cache of past
 * durations (a fresh CI machine) files run largest first, and these small
 * files of many trials then start last and keep the suite waiting on them.
 */
const LONG_RUNNING = [
  /test\/run\/crash-windows\.test\.ts$/,
  /test\/run\/crash-random-.*\.test\.ts$/,
  /test\/offsite\.test\.ts$/,
  /test\/operator-runbooks\.test\.ts$/,
  /test\/run\/crash\.test\.ts$/,
  /test\/move\.test\.ts$/,
];

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification): number => {
      const i = LONG_RUNNING.findIndex((re) => re.test(f.moduleId));
      return i === -1 ? LONG_RUNNING.length : i;
    };
    // Array sort is stable: the rest keep vitest's own order.
    return sorted.sort((a, b) => rank(a) - rank(b));
  }
}
