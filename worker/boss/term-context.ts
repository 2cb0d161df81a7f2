/**
 * What the parts of one boss term share: its dependencies (TermDeps), its state, and the pieces
 * every part reads or changes (the job table, the fleet, the ready queue, the one door). Built by
 * term.ts; the parts (takeover, dispatch, liveness, results, cancels) take it in their constructor.
 */
import type { BossMetrics, Logger, Registry, Transport } from '../../runner/index.js'
import type { Job } from '../../jobs/model.js'
import type { BossStatusReply } from '../../jobs/protocol.js'
import type { BatchBook } from './batch-book.js'
import type { Door } from './commit.js'
import type { Fleet } from './fleet.js'
import type { FlowGate } from './flow-gate.js'
import type { LimitsSource } from '../../jobs/limits-store.js'
import type { RateLedgerPort } from '../../jobs/rate-ledger-store.js'
import type { RateLedger } from './rate-ledger.js'
import type { JobTable } from './job-table.js'
import type { ReadyQueue } from './ready-queue.js'
import type { BossSettings } from './settings.js'
import type { BossStore } from './store-port.js'

/**
 * A term's life: `inventory` (asking every live worker what it runs; records arriving from the
 * store are kept but not classified) → `loading` (classifying each record as it arrives and
 * dispatching; a result or cancel for a record not read yet waits for it) → `active` (every record
 * that existed at election time has been read) → `stopped` (leadership ended or in doubt; nothing
 * more is sent or written).
 */
export type TermState = 'inventory' | 'loading' | 'active' | 'stopped'

/** What a term reports when it starts dispatching. */
export interface DispatchingReport {
  takeoverMs: number
  adopted: number
  requeued: number
  /** The newest older boss's last dispatch as the workers saw it (its epoch, ms since 1970). */
  predecessorLastDispatch?: { epoch: number; at: number }
}

export interface TermDeps {
  /**
   * This process's node id: the boss never dispatches to itself, even while its own registration lingers in
   * the cache.
   */
  selfId: string
  epoch: number
  since: string
  /** False the moment leadership is in doubt (e.g. no ZooKeeper round trip confirmed lately). */
  isCurrent(): boolean
  store: BossStore
  transport: Transport
  registry: Registry
  /** The NATS address of a node id (every process listens at a subject fixed by its id). */
  addressOf(nodeId: string): string
  /**
   * Tell waiting API requests a job finished (called only after the durable write; `job` is the
   * record as stored, sent along when `withRecord`).
   */
  publishFinished(job: Job, withRecord: boolean): void
  /**
   * Tell waiting API requests the final record of a job they wait for as its write is sent: they
   * answer with it once they hear JetStream acknowledge it on `ackSubject` (absent: not told).
   */
  announceFinal?: ((job: Job, ackSubject: string) => void) | undefined
  /** Report load (queued/running) to the APIs for backpressure. */
  publishStats(stats: BossStatusReply): void
  /** The term found a newer boss (fenced write or record): give up leadership. */
  onFenced(reason: string): void
  /** The term starts dispatching (cluster event `boss.active`). */
  onDispatching?(report: DispatchingReport): void
  /** Running jobs of a lost worker were put back in the queue (cluster event `job.redispatched`). */
  onRedispatched?(worker: string, jobs: number, reason: string): void
  /**
   * True when ZooKeeper confirms this process still leads with this term's epoch — then a record
   * claiming a newer epoch is forged or corrupt, not a sign of a newer boss.
   */
  confirmLeadership(): Promise<boolean>
  settings: BossSettings
  /** Operators' limit overrides (README "Limits"); absent: only what modules declare. */
  limits?: LimitsSource | undefined
  /** Where rate windows are kept across boss changes (rate-ledger.ts); absent: in memory only. */
  rates?: RateLedgerPort | undefined
  /** Prometheus metrics (METRICS_PORT); absent: nothing is counted. */
  metrics?: BossMetrics | undefined
  logger: Logger
}

export interface TermContext {
  readonly deps: TermDeps
  readonly epoch: number
  readonly log: Logger
  readonly table: JobTable
  /** The open batches and their state records. */
  readonly book: BatchBook
  readonly fleet: Fleet
  readonly queue: ReadyQueue
  /** Flow limits: running counts and rate windows per function and key. */
  readonly gate: FlowGate
  /** The rate windows made durable before the dispatches that moved them are sent. */
  readonly rates: RateLedger
  readonly door: Door
  state(): TermState
  /** Loading or active: the term dispatches, writes and answers. */
  acting(): boolean
  /** A newer boss exists: stop this term. */
  fenced(reason: string): void
  /** A batch's record claims a newer epoch: stop, unless ZooKeeper confirms our leadership (the batch is set aside). */
  suspectFence(reason: string, batch: string): Promise<void>
}
