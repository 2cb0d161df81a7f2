/**
 * While a new boss takes over, its table is incomplete: records are still arriving from the store
 * and, until the inventory is in, the ones that arrived are not classified yet. A result or a
 * cancel for such a job must wait for its record rather than be judged on a partial view (a
 * result acknowledged for a record not yet read is a result lost, and the job runs again).
 * Arrivals lets them wait: for classification to start, then for one id's record or the end of
 * the initial load — each wait bounded, so the sender retries rather than hangs.
 */
export class Arrivals {
  private classifyingStarted = false
  private loadComplete = false
  private readonly startWaiters: Array<() => void> = []
  private readonly idWaiters = new Map<string, Array<() => void>>()

  /** The inventory is in: records are classified as they arrive (and those already loaded now). */
  startClassifying(): void {
    this.classifyingStarted = true
    for (const w of this.startWaiters.splice(0)) w()
  }

  /** The record of `id` was loaded and classified. */
  arrived(id: string): void {
    const waiters = this.idWaiters.get(id)
    if (!waiters) return
    this.idWaiters.delete(id)
    for (const w of waiters) w()
  }

  /** Every record that existed at election time has arrived: an id still unknown is not in the store. */
  allArrived(): void {
    this.loadComplete = true
    this.release()
  }

  /** The term stopped: release every waiter. */
  stop(): void {
    this.classifyingStarted = true
    this.loadComplete = true
    for (const w of this.startWaiters.splice(0)) w()
    this.release()
  }

  /** True once the initial load is complete. */
  get complete(): boolean {
    return this.loadComplete
  }

  /**
   * Resolves when `id` can be judged: classification has started and either `known(id)` holds, its
   * record arrives, or the initial load completes — or after `timeoutMs` (the caller then checks
   * again and answers "not yet").
   */
  async wait(id: string, known: (id: string) => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    if (!this.classifyingStarted) await this.bounded((resolve) => this.startWaiters.push(resolve), timeoutMs)
    if (this.loadComplete || known(id)) return
    await this.bounded((resolve) => {
      let list = this.idWaiters.get(id)
      if (!list) this.idWaiters.set(id, (list = []))
      list.push(resolve)
    }, deadline - Date.now())
  }

  private bounded(register: (resolve: () => void) => void, ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      register(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  private release(): void {
    for (const waiters of this.idWaiters.values()) for (const w of waiters) w()
    this.idWaiters.clear()
  }
}
