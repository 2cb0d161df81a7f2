/**
 * The boss role of a worker process: lives as long as the process, answers the boss's messages,
 * and runs one BossTerm per leadership. Messages that arrive while this process is not an active
 * boss are refused with NOT_LEADER (senders look the boss up again and retry).
 */
import {
  type BossMetrics,
  errors,
  type LeaderInfo,
  type Leadership,
  type Logger,
  type Registry,
  type Transport,
} from '../../runner/index.js'
import type { Job } from '../../jobs/model.js'
import { isObject } from '../../jobs/parse.js'
import { MSG, type BossStatusReply } from '../../jobs/protocol.js'
import { RETRY_JOBS } from '../../jobs/retry-protocol.js'
import type { BossSettings } from './settings.js'
import type { BossStore } from './store-port.js'
import { BossTerm } from './term.js'
import type { DispatchingReport } from './term-context.js'
import type { LimitsSource } from '../../jobs/limits-store.js'
import type { RateLedgerPort } from '../../jobs/rate-ledger-store.js'

export interface BossRoleDeps {
  /** This process's node id. */
  selfId: string
  /** The NATS address of a node id. */
  addressOf: (nodeId: string) => string
  /** The cached leader of 'boss' (watch-invalidated). */
  whereisBoss(): Promise<LeaderInfo | null>
  store: BossStore
  transport: Transport
  registry: Registry
  settings: BossSettings
  /** Operators' limit overrides (README "Limits"). */
  limits?: LimitsSource
  /** Where rate windows are kept across boss changes. */
  rates?: RateLedgerPort
  publishFinished: (job: Job, withRecord: boolean) => void
  /** See TermDeps.announceFinal (term-context.ts). */
  announceFinal?: (job: Job, ackSubject: string) => void
  publishStats: (stats: BossStatusReply) => void
  /** A term found a newer boss: the process should resign and rejoin the election. */
  onFenced: (reason: string) => void
  /** A term starts dispatching (its epoch and takeover figures): the `boss.active` cluster event. */
  onDispatching?: (epoch: number, report: DispatchingReport) => void
  /** Prometheus metrics (METRICS_PORT); absent: nothing is counted. */
  metrics?: BossMetrics | undefined
  /** A term put a lost worker's running jobs back in the queue: the `job.redispatched` cluster event. */
  onRedispatched?: (epoch: number, worker: string, jobs: number, reason: string) => void
  /** Start what runs beside a dispatching term (the schedules); returns its stop. */
  startSideTasks?: (epoch: number, acting: () => boolean) => () => void
  logger: Logger
}

export class BossRole {
  private term: BossTerm | undefined
  /** Stops the side tasks of the current term (started when it dispatches). */
  private stopSideTasks: (() => void) | undefined
  private readonly log: Logger

  constructor(private readonly d: BossRoleDeps) {
    this.log = d.logger
  }

  /** Register the boss's message handlers on the process's address. Call once. */
  start(): void {
    const t = this.d.transport
    t.handle(MSG.results, (body) => this.active().onResults(body))
    t.handle(MSG.cancelJob, (body) => {
      if (!isObject(body) || typeof body.id !== 'string') throw errors.BAD_MESSAGE('cancel needs { id }')
      return this.active()
        .onCancel(body.id)
        .then((job) => ({ job }))
    })
    t.handle(MSG.bossStatus, () => this.active().status())
    t.handle(RETRY_JOBS, (body) => this.active().onRetry(body))
  }

  get isActing(): boolean {
    return this.term?.active ?? false
  }

  get epoch(): number | undefined {
    return this.term?.epoch
  }

  /** Begin a term for this leadership; it ends when the leadership's signal aborts. */
  async elected(leadership: Leadership): Promise<void> {
    this.term?.stop()
    this.endSideTasks()
    const term = new BossTerm({
      selfId: this.d.selfId,
      epoch: leadership.epoch,
      since: leadership.since,
      isCurrent: () => leadership.isCurrent(),
      confirmLeadership: async () => {
        if (!leadership.isCurrent()) return false
        const leader = await this.d.whereisBoss()
        return leader !== null && leader.id === this.d.selfId && leader.epoch === leadership.epoch
      },
      store: this.d.store,
      transport: this.d.transport,
      registry: this.d.registry,
      addressOf: this.d.addressOf,
      publishFinished: this.d.publishFinished,
      announceFinal: this.d.announceFinal,
      publishStats: this.d.publishStats,
      onFenced: this.d.onFenced,
      onDispatching: (report) => {
        this.d.onDispatching?.(leadership.epoch, report)
        if (this.term !== term || !term.active) return
        this.stopSideTasks?.()
        this.stopSideTasks = this.d.startSideTasks?.(leadership.epoch, () => this.term === term && term.active)
      },
      metrics: this.d.metrics,
      onRedispatched: (worker, jobs, reason) => this.d.onRedispatched?.(leadership.epoch, worker, jobs, reason),
      settings: this.d.settings,
      limits: this.d.limits,
      rates: this.d.rates,
      logger: this.log,
    })
    this.term = term
    const stop = () => {
      term.stop()
      if (this.term === term) {
        this.term = undefined
        this.endSideTasks()
      }
    }
    if (leadership.signal.aborted) return stop()
    leadership.signal.addEventListener('abort', stop, { once: true })
    this.log.info({ epoch: leadership.epoch }, 'elected boss: loading jobs and adopting running work')
    try {
      await term.start()
    } catch (err) {
      this.log.error({ err }, 'boss term failed to start')
      stop()
      this.d.onFenced('term failed to start')
    }
  }

  /** Leadership ended or is in doubt: stop acting at once. */
  deposed(): void {
    if (this.term) this.log.warn({ epoch: this.term.epoch }, 'deposed: boss term stopped')
    this.term?.stop()
    this.term = undefined
    this.endSideTasks()
  }

  private endSideTasks(): void {
    const stop = this.stopSideTasks
    this.stopSideTasks = undefined
    stop?.()
  }

  private active(): BossTerm {
    const term = this.term
    if (!term || !term.active) throw errors.NOT_LEADER('this process is not the acting boss')
    return term
  }
}
