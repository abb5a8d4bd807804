// A round of work run again every `intervalMs` until stopped (local mode's stand-ins for what kubelets and
// containers would do): one round at a time, a failed round reported and retried in the next, and stop()
// waits for the round in flight so nothing writes after it.
export function runRounds(
  round: () => Promise<void>,
  onError: (err: unknown) => void,
  intervalMs: number,
): { stop(): Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = () => {
    running = round()
      .catch((err: unknown) => {
        if (!stopped) onError(err);
      })
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
