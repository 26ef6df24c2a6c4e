import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: real-QEMU and namespace tests are heavy, keep file parallelism modest.
    maxWorkers: 2,
  },
});
