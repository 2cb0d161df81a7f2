/**
 * A counting semaphore for JetStream requests. Keeping a bounded number in flight keeps each
 * request's latency (and so its timeout) independent of how many callers queue behind it: a
 * request's timeout starts when it is sent, not while it waits here.
 */
export class Limiter {
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor(readonly limit: number) {
    if (!Number.isSafeInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a positive integer, got ${limit}`)
  }

  /** Requests running now. */
  get running(): number {
    return this.active
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiting.length
  }

  /** Run `fn` once a slot is free; the slot is released when its promise settles. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.active++
    try {
      return await fn()
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.active--
    }
  }
}
