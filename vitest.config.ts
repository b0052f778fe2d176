import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Vite transforms TS with oxc; give every file legacy decorators + metadata, as tsc does for the build.
  oxc: { decorator: { legacy: true, emitDecoratorMetadata: true } },
  test: {
    include: ['{schemas,plugin-sdk,core,host,plugins/*,integration-tests}/src/**/*.test.ts'],
    setupFiles: ['reflect-metadata'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
