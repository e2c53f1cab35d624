// Flow-control ack batching: counts output bytes that xterm has finished processing and
// reports them to the server in batches (at a byte threshold, or after a short idle delay),
// so the server's unacknowledged-bytes window keeps moving without one ack per frame.

export interface AckTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const defaultTimers: AckTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export const ACK_THRESHOLD = 32 * 1024;
export const ACK_IDLE_MS = 30;
const U32_MAX = 0xffffffff;

export class AckBatcher {
  private pending = 0;
  private timer: unknown = null;

  constructor(
    private readonly send: (count: number) => void,
    private readonly threshold = ACK_THRESHOLD,
    private readonly idleMs = ACK_IDLE_MS,
    private readonly timers: AckTimers = defaultTimers,
  ) {}

  /** Records `n` processed output bytes; acks at once past the threshold, else on idle. */
  processed(n: number): void {
    if (n <= 0) return;
    this.pending += n;
    if (this.pending >= this.threshold) {
      this.flush();
    } else if (this.timer === null) {
      this.timer = this.timers.set(() => {
        this.timer = null;
        this.flush();
      }, this.idleMs);
    }
  }

  /** Sends everything pending now (in u32-sized pieces). */
  flush(): void {
    this.cancelTimer();
    while (this.pending > 0) {
      const n = Math.min(this.pending, U32_MAX);
      this.pending -= n;
      this.send(n);
    }
  }

  /** Forgets pending bytes (the connection they belong to is gone). */
  reset(): void {
    this.cancelTimer();
    this.pending = 0;
  }

  get unacked(): number {
    return this.pending;
  }

  private cancelTimer(): void {
    if (this.timer !== null) {
      this.timers.clear(this.timer);
      this.timer = null;
    }
  }
}
