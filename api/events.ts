/**
 * Waits for jobs' finished notices (the boss sends them after the durable write, many jobs per
 * message: worker/boss/finished-notices.ts). One subscription per API process, opened at the first
 * wait; each waiting request registers its job id here. A notice is only a wake-up — anyone could
 * publish on the subject — so the caller re-reads the job from the store; a malformed message is
 * dropped with a warning and wakes nobody.
 */
import { MSG, parseFinishedBody } from '../jobs/protocol.js'
import type { Logger } from '../runner/logger.js'
import { finishedJobsSubject, type NatsTransport } from '../runner/transport/index.js'
import type { EventWaiter } from './job-service.js'

type Wake = () => void

export function natsEventWaiter(transport: NatsTransport, cluster: string, logger: Logger): EventWaiter {
  const log = logger.child({ component: 'finished-notices' })
  const waiting = new Map<string, Set<Wake>>()
  let listening = false

  const listen = () => {
    if (listening) return
    listening = true
    transport.listen(finishedJobsSubject(cluster), (envelope) => {
      if (envelope.type !== MSG.finished) return log.warn({ type: envelope.type }, 'unexpected message dropped')
      let jobs
      try {
        jobs = parseFinishedBody(envelope.body).jobs
      } catch (err) {
        return log.warn({ err, from: envelope.from }, 'malformed finished notice dropped')
      }
      for (const { id } of jobs) {
        const wakes = waiting.get(id)
        if (!wakes) continue
        waiting.delete(id)
        for (const wake of wakes) wake()
      }
    })
  }

  return {
    waitOnce(jobId: string, timeoutMs: number) {
      listen()
      let settle: () => void = () => undefined
      const promise = new Promise<void>((resolve) => {
        let timer: NodeJS.Timeout | undefined = undefined
        let wakes = waiting.get(jobId)
        if (!wakes) waiting.set(jobId, (wakes = new Set()))
        const wake: Wake = () => settle()
        settle = () => {
          clearTimeout(timer)
          const set = waiting.get(jobId)
          set?.delete(wake)
          if (set?.size === 0) waiting.delete(jobId)
          resolve()
        }
        wakes.add(wake)
        timer = setTimeout(settle, timeoutMs)
      })
      return { promise, cancel: () => settle() }
    },
  }
}
