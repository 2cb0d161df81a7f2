/**
 * One request's time on the job store. Every store call a request makes is raced against a single
 * deadline (STORE_TIMEOUT_MS in all, not per call), so a stalled NATS link turns into a 503 with
 * Retry-After within that time instead of a request that hangs. Time spent waiting for something
 * that is not the store (a `?wait=` for the job to finish) is not charged.
 */
import { errors } from '../runner/index.js'

/** Longest a request spends waiting on the job store (which retries transient faults inside). */
export const STORE_TIMEOUT_MS = 5000

export class StoreDeadline {
  private end: number
  /** The errors this deadline raised (told apart from the store's own failures). */
  private readonly expired = new WeakSet<Error>()

  /** @param budgetMs the request's store time. @defaultValue STORE_TIMEOUT_MS */
  constructor(private readonly budgetMs = STORE_TIMEOUT_MS) {
    this.end = Date.now() + budgetMs
  }

  /** Store time left, in ms. */
  get remainingMs(): number {
    return Math.max(0, this.end - Date.now())
  }

  /**
   * `p`'s outcome, or BOSUN_ERR_STORE (503, Retry-After 1) when the request's store time runs out
   * first (the outcome of `p` is then unknown to the client: it retries, with an idempotencyKey).
   */
  call<T>(p: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.timeoutError(what)), this.remainingMs)
    })
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
  }

  /** Like call(), but a store that does not answer in time yields `fallback` instead of an error. */
  async callOr<T>(p: Promise<T>, what: string, fallback: T): Promise<T> {
    try {
      return await this.call(p, what)
    } catch (err) {
      if (err instanceof Error && this.expired.has(err)) return fallback
      throw err
    }
  }

  /** Every value of a store iteration, each step raced against the deadline. */
  async collect<T>(iterable: AsyncIterable<T>, what: string): Promise<T[]> {
    const it = iterable[Symbol.asyncIterator]()
    const out: T[] = []
    try {
      for (;;) {
        const step = await this.call(it.next(), what)
        if (step.done) return out
        out.push(step.value)
      }
    } catch (err) {
      // A stalled iterator may never settle its return(): do not wait for it.
      void Promise.resolve(it.return?.()).catch(() => undefined)
      throw err
    }
  }

  /** Await something that is not store work (a `?wait=`): its time is added back to the budget. */
  async outside<T>(p: Promise<T>): Promise<T> {
    const t0 = Date.now()
    try {
      return await p
    } finally {
      this.end += Date.now() - t0
    }
  }

  private timeoutError(what: string): Error {
    const message =
      `the job store did not answer the ${what} in time (${this.budgetMs} ms per request); ` +
      'retry (with an idempotencyKey to be safe)'
    const err = errors.STORE(message, { retryAfterSeconds: 1 })
    this.expired.add(err)
    return err
  }
}
