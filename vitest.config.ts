import { defineConfig } from 'vitest/config';
import LongestFirst from './test/support/longest-first.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Finds or starts the PostgreSQL server every suite uses (see the file).
    globalSetup: ['test/support/globalSetup.ts'],
    // A timeout catches a hang, not slowness: on a machine three times slower than usual (the
    // suite took 24 minutes instead of 7½), tests that take and verify several backups of a
    // 40 MB database ran past 60 s under the six files at a time.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Child processes, not threads: tests spawn pg tools and kill processes.
    pool: 'forks',
    // Six files at a time, even on two cores: a test spends much of its time waiting on
    // PostgreSQL and the tools it spawns (measured on two cores: 28 min one at a time,
    // 10.7 with four, 9.9 with six). Every file makes its own databases, stores, workspaces
    // and temporary directories, and asserts only over what it made.
    maxWorkers: 6,
    sequence: { sequencer: LongestFirst },
    // The JSON report gives CI one plain closing line ("N passed, N failed").
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results.json' },
  },
});
