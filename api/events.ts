/**
 * Waits for jobs' finished notices (the boss sends them after the durable write, many jobs per
 * message: worker/boss/finished-notices.ts). One subscription per API process, opened at the first
 * wait; each waiting request registers its job id here. A notice wakes the requests waiting on its
 * job; when it carries the job's final record (the job's submitter waits: `waited`), they answer with
 * it, else they read the job from the store. Before that notice, such a request can answer from the
 * record the boss announces as it sends the write, once the API hears JetStream acknowledge that
 * write (final-pairs.ts). The notice subjects are trusted as far as the job store
 * is: whoever may publish on the cluster's subjects may write DONE too (README "Security"). A
 * malformed message is dropped with a warning and wakes nobody; a malformed record is dropped with a
 * warning and its entry only wakes.
 */
import type { Job } from '../jobs/model.js'
import { parseFinishedBody, type FinishedNotice } from '../jobs/finished-notice.js'
import { MSG } from '../jobs/protocol.js'
import type { Logger } from '../runner/logger.js'
import { finalAcksSubjects, finishedJobsSubject, finishingJobsSubject, type NatsTransport } from '../runner/index.js'
import { ackStored, FinalPairs } from './final-pairs.js'
import type { EventWaiter } from './job-service.js'

type Wake = (job: Job | undefined) => void

/** Unpaired announced records and acknowledgements are forgotten after one to two of these. */
const PAIRS_SWEEP_MS = 2000

export function natsEventWaiter(transport: NatsTransport, cluster: string, logger: Logger): EventWaiter {
  const log = logger.child({ component: 'finished-notices' })
  const waiting = new Map<string, Set<Wake>>()
  let listening = false

  const pairs = new FinalPairs()

  const wakeAll = (id: string, job: Job | undefined) => {
    const wakes = waiting.get(id)
    if (!wakes) return
    waiting.delete(id)
    for (const wake of wakes) wake(job)
  }

  /** The entries of a notice message on `subject` (finished, or finishing: announced records). */
  const notices = (subject: string, onEntries: (jobs: FinishedNotice[]) => void) =>
    transport.listen(subject, (envelope) => {
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
      onEntries(parsed.jobs)
    })

  const listen = () => {
    if (listening) return
    listening = true
    notices(finishedJobsSubject(cluster), (jobs) => {
      for (const { id, job } of jobs) wakeAll(id, job)
    })
    // A waited job's record as its write is sent, answered with once the write's acknowledgement,
    // heard here too, says it is stored: one broker leg before the boss's finished notice.
    notices(finishingJobsSubject(cluster), (jobs) => {
      for (const { id, job, ack } of jobs) {
        if (job === undefined || ack === undefined || !waiting.has(id)) continue
        const stored = pairs.record(ack, job)
        if (stored) wakeAll(id, stored)
      }
    })
    transport.listenRaw(finalAcksSubjects(cluster), (data, subject) => {
      const job = pairs.acked(subject, ackStored(data))
      if (job) wakeAll(job.id, job)
    })
    setInterval(() => pairs.sweep(), PAIRS_SWEEP_MS).unref()
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
