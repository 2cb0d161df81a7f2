/**
 * Waits for jobs' finished notices (the boss sends them after the durable write, many jobs per
 * message: worker/boss/finished-notices.ts). One subscription per API process, opened at the first
 * wait; each waiting request registers its job id here. A notice wakes the requests waiting on its
 * job; when it carries the job's final record (the job's submitter waits: `waited`), they answer with
 * it, else they read the job from the store. The notice subject is trusted as far as the job store
 * is: whoever may publish on the cluster's subjects may write DONE too (README "Security"). A
 * malformed message is dropped with a warning and wakes nobody; a malformed record is dropped with a
 * warning and its entry only wakes.
 */
import type { Job } from '../jobs/model.js'
import { parseFinishedBody } from '../jobs/finished-notice.js'
import { MSG } from '../jobs/protocol.js'
import type { Logger } from '../runner/logger.js'
import { finishedJobsSubject, type NatsTransport } from '../runner/transport/index.js'
import type { EventWaiter } from './job-service.js'

type Wake = (job: Job | undefined) => void

export function natsEventWaiter(transport: NatsTransport, cluster: string, logger: Logger): EventWaiter {
  const log = logger.child({ component: 'finished-notices' })
  const waiting = new Map<string, Set<Wake>>()
  let listening = false

  const listen = () => {
    if (listening) return
    listening = true
    transport.listen(finishedJobsSubject(cluster), (envelope) => {
      if (envelope.type !== MSG.finished) return log.warn({ type: envelope.type }, 'unexpected message dropped')
      let parsed
      try {
        parsed = parseFinishedBody(envelope.body)
      } catch (err) {
        return log.warn({ err, from: envelope.from }, 'malformed finished notice dropped')
      }
      if (parsed.badRecords > 0)
        log.warn(
          { from: envelope.from, records: parsed.badRecords },
          'malformed job records in a finished notice dropped',
        )
      for (const { id, job } of parsed.jobs) {
        const wakes = waiting.get(id)
        if (!wakes) continue
        waiting.delete(id)
        for (const wake of wakes) wake(job)
      }
    })
  }

  return {
    waitOnce(jobId: string, timeoutMs: number) {
      listen()
      let settle: (job?: Job) => void = () => undefined
      const promise = new Promise<Job | undefined>((resolve) => {
        let timer: NodeJS.Timeout | undefined = undefined
        let wakes = waiting.get(jobId)
        if (!wakes) waiting.set(jobId, (wakes = new Set()))
        const wake: Wake = (job) => settle(job)
        settle = (job) => {
          clearTimeout(timer)
          const set = waiting.get(jobId)
          set?.delete(wake)
          if (set?.size === 0) waiting.delete(jobId)
          resolve(job)
        }
        wakes.add(wake)
        timer = setTimeout(() => settle(), timeoutMs)
      })
      return { promise, cancel: () => settle() }
    },
  }
}
