/**
 * SingleFlight: one async task that never runs twice at once. `run()` resolves after a pass that
 * started after the call (concurrent calls coalesce into one extra pass); `kick()` runs it in the
 * background and retries on failure (one pending retry at most), after `retryMs` doubled for every
 * failure in a row up to `maxRetryMs`. The watch-driven recipes (caches, candidacy, registry)
 * re-evaluate through this.
 */
export interface SingleFlightOptions {
  /** Delay before the first retry of a failed background pass. */
  retryMs: number
  /** Cap of the doubling retry delay. @defaultValue retryMs (no backoff) */
  maxRetryMs?: number
  /** Whether a failed background pass should be retried now (e.g. not when closed). */
  shouldRetry?(err: unknown): boolean
  onError(err: unknown): void
}

export class SingleFlight {
  /** True from the start of a loop to the synchronous end of its last pass (never a gap after it). */
  private looping = false
  private running: Promise<void> = Promise.resolve()
  private again = false
  private closed = false
  private retryTimer: NodeJS.Timeout | undefined
  /** Failed passes since the last successful one (the retry delay doubles with each). */
  private failures = 0

  constructor(
    private readonly task: () => Promise<void>,
    private readonly opts: SingleFlightOptions,
  ) {}

  /** Run (or join the current run and add one more pass); rejects with the last pass's error. */
  run(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.again = true
    if (!this.looping) {
      this.looping = true
      this.running = this.loop()
    }
    return this.running
  }

  /** Called from inside the task: do one more pass after this one. */
  repeat(): void {
    this.again = true
  }

  /** Run in the background; failures are reported and retried. */
  kick(): void {
    this.run().catch((err: unknown) => this.retry(err))
  }

  /**
   * A run() of the caller's failed with `err`: report it and retry in the background as kick() does
   * (after the backoff delay; nothing when closed, when a retry is pending, or when shouldRetry says no).
   */
  retry(err: unknown): void {
    if (this.closed || this.retryTimer) return
    this.opts.onError(err)
    if (this.opts.shouldRetry && !this.opts.shouldRetry(err)) return
    const backoff = this.opts.retryMs * 2 ** Math.max(0, this.failures - 1)
    const delay = Math.min(backoff, this.opts.maxRetryMs ?? this.opts.retryMs)
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined
        this.kick()
      },
      Math.max(delay, this.opts.retryMs),
    )
    this.retryTimer.unref()
  }

  close(): void {
    this.closed = true
    this.again = false
    if (this.retryTimer) clearTimeout(this.retryTimer)
  }

  /**
   * Passes while `again` is set. `looping` is cleared in the same synchronous step as the last check
   * of `again`: a run() landing in any later microtask (before this promise settles) starts a new loop
   * instead of joining one that will not look at `again` any more.
   */
  private async loop(): Promise<void> {
    let lastError: unknown
    try {
      while (this.again && !this.closed) {
        this.again = false
        try {
          await this.task()
          lastError = undefined
          this.failures = 0
        } catch (err) {
          lastError = err
          this.failures++
        }
      }
    } finally {
      this.looping = false
    }
    // rethrows what the last pass threw, whatever it was
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    if (lastError !== undefined) throw lastError
  }
}
