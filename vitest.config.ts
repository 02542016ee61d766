import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/e2e/stage.ts', 'test/e2e/subids.ts'],
    // e2e tests start many real processes; a loaded 2-core machine needs the room.
    testTimeout: 90_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Each e2e test already runs several processes; two files at a time suits two cores.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
