/** Waits for a job's finished event on NATS (the boss publishes it after the durable write). */
import type { NatsTransport } from '../runner/transport/index.js'
import type { EventWaiter } from './job-service.js'

export function natsEventWaiter(transport: NatsTransport): EventWaiter {
  return {
    waitOnce(subject: string, timeoutMs: number) {
      let stop: (() => void) | undefined
      let timer: NodeJS.Timeout | undefined
      let settle: (v: unknown) => void = () => undefined
      const promise = new Promise<unknown>((resolve) => {
        settle = (v) => {
          if (timer) clearTimeout(timer)
          stop?.()
          stop = undefined
          resolve(v)
        }
        timer = setTimeout(() => settle(undefined), timeoutMs)
        stop = transport.listen(subject, (envelope) => settle(envelope.body))
      })
      return { promise, cancel: () => settle(undefined) }
    },
  }
}
