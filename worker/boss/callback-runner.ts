/**
 * The deliverer of completion callbacks (README "Completion callbacks"): a side task of the acting
 * boss (BossRole's startSideTasks, beside the schedules), so callbacks go out from one process at a
 * time, not once per API. It pulls delivery tasks from the task stream through one durable consumer
 * (explicit acks; a task in flight is kept alive with `working()`; one that waits is `nak`ed with a
 * delay, so a backlog costs the server a timer per task and this process nothing), reads the job's
 * final record from DONE and the delivery status, decides (callback-plan.ts), POSTs
 * (callback-http.ts), records the outcome, then acks or naks with the backoff. At least once: a boss
 * that dies mid-POST leaves its task unacked, and the next boss sends it again after the ack wait.
 * A deposed boss stops at once: its POSTs in flight are aborted and their tasks handed back.
 */
import { AckPolicy, DeliverPolicy, type JsMsg } from '@nats-io/jetstream'
import type { Job } from '../../jobs/model.js'
import { decodeDone } from '../../jobs/streams/reopened.js'
import { streamNames, Subjects } from '../../jobs/streams/index.js'
import {
  callbackStreams,
  decodeTask,
  encodeJson,
  type CallbackStatus,
  type CallbackStore,
  type CallbackTask,
} from '../../jobs/callbacks/store.js'
import { publicJob } from '../../jobs/model.js'
import type { Logger } from '../../runner/logger.js'
import { sleep } from '../../runner/retry.js'
import type { CallbackSettings } from '../callback-config.js'
import { postCallback } from './callback-http.js'
import { afterAttempt, attemptError, planTask, type PostOutcome } from './callback-plan.js'

/** The durable consumer every boss in turn pulls from. */
const CONSUMER = 'deliverer'
/** POSTs in flight at once. */
const MAX_IN_FLIGHT = 16
/** Tasks handed out and not acked (including those waiting out a backoff): the server's bound. */
const MAX_ACK_PENDING = 20_000
/** How long a fetch waits for tasks before asking again. */
const FETCH_EXPIRES_MS = 2000

export interface CallbackRunnerDeps {
  store: CallbackStore
  settings: CallbackSettings
  logger: Logger
}

/** The ack wait: a little over one POST; `working()` extends it while a POST runs. */
export function ackWaitMs(timeoutMs: number): number {
  return Math.min(30_000, Math.max(6000, timeoutMs + 5000))
}

/** A starter for BossRole's side tasks: the deliverer of the term `epoch`, until the returned stop. */
export function callbackRunner(d: CallbackRunnerDeps): (epoch: number, acting: () => boolean) => () => void {
  return (epoch, acting) => {
    const deliverer = new CallbackDeliverer(d, acting, d.logger.child({ component: 'callbacks', epoch }))
    deliverer.start()
    return () => deliverer.stop()
  }
}

class CallbackDeliverer {
  private readonly stopper = new AbortController()
  private inFlight = 0
  private slotFreed: (() => void) | undefined
  private batch: { stop(): void } | undefined
  private readonly streams: { tasks: string; done: string }
  private readonly subjects: Subjects

  constructor(
    private readonly d: CallbackRunnerDeps,
    private readonly acting: () => boolean,
    private readonly log: Logger,
  ) {
    const cluster = d.store.cluster
    this.streams = { tasks: callbackStreams(cluster).tasks, done: streamNames(cluster).done }
    this.subjects = new Subjects(cluster)
  }

  start(): void {
    void this.loop().catch((err: unknown) => this.log.error({ err }, 'callback deliverer stopped'))
  }

  stop(): void {
    if (this.stopper.signal.aborted) return
    this.stopper.abort()
    this.batch?.stop()
    this.slotFreed?.()
  }

  private get stopped(): boolean {
    return this.stopper.signal.aborted || !this.acting()
  }

  private async loop(): Promise<void> {
    for (let failures = 0; !this.stopped;) {
      try {
        await this.ensureConsumer()
        const consumer = await this.d.store.js.consumers.get(this.streams.tasks, CONSUMER)
        failures = 0
        while (!this.stopped) {
          while (this.inFlight >= MAX_IN_FLIGHT && !this.stopped) await new Promise<void>((r) => (this.slotFreed = r))
          if (this.stopped) break
          const batch = await consumer.fetch({ max_messages: MAX_IN_FLIGHT - this.inFlight, expires: FETCH_EXPIRES_MS })
          this.batch = batch
          for await (const m of batch) {
            if (this.stopped) {
              m.nak() // a task that came after the term ended goes to the next boss at once
              continue
            }
            this.inFlight++
            void this.handle(m)
              .catch((err: unknown) => {
                this.log.warn({ err, subject: m.subject }, 'callback task failed; handed back')
                m.nak(1000)
              })
              .finally(() => {
                this.inFlight--
                this.slotFreed?.()
              })
          }
        }
      } catch (err) {
        if (this.stopped) break
        this.log.warn({ err }, 'callback tasks cannot be read; retrying')
        await sleep(Math.min(5000, 250 * 2 ** failures++))
      }
    }
  }

  private async ensureConsumer(): Promise<void> {
    const jsm = this.d.store.jsm
    const ack_wait = ackWaitMs(this.d.settings.timeoutMs) * 1e6
    const info = await jsm.consumers.info(this.streams.tasks, CONSUMER).catch((err: unknown) => {
      if (/consumer not found/i.test((err as Error).message)) return undefined
      throw err
    })
    if (!info) {
      await jsm.consumers.add(this.streams.tasks, {
        durable_name: CONSUMER,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait,
        max_ack_pending: MAX_ACK_PENDING,
        max_deliver: -1,
      })
      return
    }
    if (info.config.ack_wait !== ack_wait)
      await jsm.consumers.update(this.streams.tasks, CONSUMER, { ack_wait, max_ack_pending: MAX_ACK_PENDING })
  }

  private async handle(m: JsMsg): Promise<void> {
    const task = decodeTask(m.data)
    if (!task || m.subject !== `bosun.${this.d.store.cluster}.cb.${task.jobId}`) {
      this.log.warn({ subject: m.subject, seq: m.seq }, 'a callback task that is not one: dropped')
      return m.ack()
    }
    const [final, status] = await Promise.all([this.readFinal(task.jobId, task.run), this.d.store.status(task.jobId)])
    if (this.stopped) return m.nak()
    const step = planTask({
      task,
      final,
      status,
      queuedAt: Number(m.info.timestampNanos) / 1e6,
      deliveries: m.info.deliveryCount,
      now: Date.now(),
      settings: this.d.settings,
    })
    switch (step.do) {
      case 'wait':
        return m.nak(step.delayMs)
      case 'drop':
        this.log.debug({ jobId: task.jobId, run: task.run, why: step.why }, 'callback task dropped')
        return m.ack()
      case 'fail': {
        this.log.warn({ jobId: task.jobId, run: task.run, why: step.why }, 'callback failed')
        const last = step.lastStatus !== undefined ? { lastStatus: step.lastStatus } : {}
        await this.record(task, { state: 'failed', attempts: step.attempts, ...last, lastError: step.why })
        return m.ack()
      }
      case 'post':
        return this.post(m, task, step.job, step.attempt)
    }
  }

  private async post(m: JsMsg, task: CallbackTask, job: Job, attempt: number): Promise<void> {
    const { settings } = this.d
    const heartbeat = setInterval(() => m.working(), ackWaitMs(settings.timeoutMs) / 3)
    let outcome: PostOutcome
    try {
      outcome = await postCallback({
        url: job.callbackUrl!,
        jobId: task.jobId,
        run: task.run,
        attempt,
        body: encodeJson(publicJob(job)),
        secret: settings.secret ?? '',
        timeoutMs: settings.timeoutMs,
        signal: this.stopper.signal,
      })
    } finally {
      clearInterval(heartbeat)
    }
    if (this.stopped) return m.nak() // the next boss sends it again (at least once)
    const next = afterAttempt(outcome, attempt, job, Date.now(), settings)
    const error = attemptError(outcome)
    await this.record(task, {
      state: next.state,
      attempts: attempt,
      ...(outcome.status !== undefined ? { lastStatus: outcome.status } : {}),
      ...(error !== undefined && next.state !== 'delivered' ? { lastError: error } : {}),
    })
    const log = { jobId: task.jobId, run: task.run, attempt, status: outcome.status, error }
    if (next.state === 'pending') {
      this.log.info({ ...log, retryInMs: next.delayMs }, 'callback not delivered; retrying')
      return m.nak(next.delayMs)
    }
    if (next.state === 'failed') this.log.warn(log, 'callback failed: BOSUN_CALLBACK_MAX_AGE_MS reached')
    else this.log.debug(log, 'callback delivered')
    m.ack()
  }

  /** Store the delivery status (retried a few times: a lost status only shows an older state). */
  private async record(task: CallbackTask, s: Omit<CallbackStatus, 'v' | 'jobId' | 'run' | 'at'>): Promise<void> {
    const status: CallbackStatus = { v: 1, jobId: task.jobId, run: task.run, ...s, at: new Date().toISOString() }
    for (let tries = 0; ; tries++) {
      try {
        return await this.d.store.writeStatus(status)
      } catch (err) {
        if (tries >= 3 || this.stopped) {
          this.log.warn({ err, jobId: task.jobId }, 'callback status not stored')
          return
        }
        await sleep(200 * 2 ** tries)
      }
    }
  }

  /** The job's final record in DONE (null: none, or garbage — dropped with a warning). */
  private async readFinal(jobId: string, taskRun: number): Promise<Job | null> {
    const msg = await this.d.store.jsm.streams.getMessage(this.streams.done, {
      last_by_subj: this.subjects.done(jobId),
    })
    if (!msg) return null
    const decoded = decodeDone(msg.data, jobId)
    if (decoded.kind === 'garbage')
      this.log.warn({ jobId, seq: msg.seq, problem: decoded.problem }, 'a final record that is not one: ignored')
    // A reopened record (the job was retried): a newer run than the task's makes the task moot (dropped);
    // the task's own run has no final record yet.
    if (decoded.kind === 'reopened') return (decoded.job.run ?? 0) > taskRun ? decoded.job : null
    return decoded.kind === 'final' ? decoded.job : null
  }
}
