import { defineConfig } from 'vitest/config';

// Forks, not threads: native addons and worker-thread exit do not mix well
// inside the runner itself (tests that need workers start their own).
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
