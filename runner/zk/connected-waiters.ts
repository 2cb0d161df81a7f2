/**
 * Callers waiting for the ZooKeeper client to be connected (runner/zk/session.ts): a request is
 * only handed to a connected client — node-zookeeper-client would queue it across a disconnection
 * with no timeout — so a request made while disconnected waits here, up to its own deadline.
 */
import { performance } from 'node:perf_hooks'
import { errors } from '../errors.js'

interface Waiter {
  resolve(): void
  reject(err: Error): void
}

export class ConnectedWaiters {
  private readonly waiters = new Set<Waiter>()

  /** Resolves at the next `connected()`; rejects at `deadline` (performance.now() time) or `closed()`. */
  wait(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const ms = deadline - performance.now()
      const timer = Number.isFinite(ms)
        ? setTimeout(
            () => {
              this.waiters.delete(waiter)
              reject(errors.ZK_NOT_CONNECTED(`not connected to ZooKeeper within ${Math.round(ms)} ms`))
            },
            Math.max(0, ms),
          )
        : undefined
      const waiter: Waiter = {
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
        reject: (err) => {
          clearTimeout(timer)
          reject(err)
        },
      }
      this.waiters.add(waiter)
    })
  }

  /** The client is connected: every waiter goes on. */
  connected(): void {
    for (const w of this.waiters) w.resolve()
    this.waiters.clear()
  }

  /** The session is closed: every waiter fails with CLOSED. */
  closed(): void {
    for (const w of this.waiters) w.reject(errors.CLOSED('ZooKeeper session closed'))
    this.waiters.clear()
  }
}
