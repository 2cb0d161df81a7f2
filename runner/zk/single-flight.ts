/**
 * SingleFlight: one async task that never runs twice at once. `run()` resolves after a pass that
 * started after the call (concurrent calls coalesce into one extra pass); `kick()` runs it in the
 * background and retries after `retryMs` on failure (one pending retry at most). The watch-driven
 * recipes (caches, candidacy) re-evaluate through this.
 */
export interface SingleFlightOptions {
  retryMs: number
  /** Whether a failed background pass should be retried now (e.g. not when closed). */
  shouldRetry?(err: unknown): boolean
  onError(err: unknown): void
}

export class SingleFlight {
  private running: Promise<void> | undefined
  private again = false
  private closed = false
  private retryTimer: NodeJS.Timeout | undefined

  constructor(private readonly task: () => Promise<void>, private readonly opts: SingleFlightOptions) {}

  /** Run (or join the current run and add one more pass); rejects with the last pass's error. */
  run(): Promise<void> {
    if (this.closed) return Promise.resolve()
    this.again = true
    this.running ??= this.loop().finally(() => (this.running = undefined))
    return this.running
  }

  /** Called from inside the task: do one more pass after this one. */
  repeat(): void {
    this.again = true
  }

  /** Run in the background; failures are reported and retried. */
  kick(): void {
    this.run().catch((err) => {
      if (this.closed || this.retryTimer) return
      this.opts.onError(err)
      if (this.opts.shouldRetry && !this.opts.shouldRetry(err)) return
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined
        this.kick()
      }, this.opts.retryMs)
      this.retryTimer.unref()
    })
  }

  close(): void {
    this.closed = true
    this.again = false
    if (this.retryTimer) clearTimeout(this.retryTimer)
  }

  private async loop(): Promise<void> {
    let lastError: unknown
    while (this.again && !this.closed) {
      this.again = false
      try {
        await this.task()
        lastError = undefined
      } catch (err) {
        lastError = err
      }
    }
    if (lastError !== undefined) throw lastError
  }
}
