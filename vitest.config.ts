import { defineConfig } from "vitest/config";

// Two projects: unit tests (pure, no I/O beyond loopback simulators) and integration suites that need a
// real kube-apiserver; only the latter pay for starting the shared control plane.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["src/**/*.test.ts", "scripts/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["e2e/**/*.test.ts"],
          globalSetup: ["e2e/harness/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // The suites share one control plane; running files one at a time keeps 2 cores responsive.
          fileParallelism: false,
        },
      },
    ],
  },
});
