/** The worker process's configuration (runtime env + the worker's own), parsed once. */
import {
  type EnvSpec,
  FORCE_EXIT_MS,
  parseEnv,
  type RuntimeConfig,
  runtimeConfigFrom,
  runtimeEnv,
} from '../runner/index.js'
import { errors } from '../runner/errors.js'
import { DEFAULT_BOSS_SETTINGS, type BossSettings } from './boss/settings.js'
import type { FunctionIsolation } from './executor/executor.js'
import { callbackEnv, callbackSettingsFrom, type CallbackSettings } from './callback-config.js'
import { DEFAULT_JOB_LOG_MAX_BYTES, DEFAULT_JOB_LOG_MAX_LINES } from '../jobs/live.js'
import { MAX_PREFETCH_PER_SLOT } from '../jobs/worker-advert.js'

export const DEFAULT_WORKER_CONCURRENCY = 8
export const DEFAULT_RETENTION_MS = 24 * 3600 * 1000

/**
 * A worker's SIGTERM budget (README "Guarantees, and how they are kept": exit 0 within 10 s).
 * stop() runs these phases in order, each bounded by its own deadline; the drain's grace gets what
 * the others leave.
 */
export const SHUTDOWN_BUDGET = Object.freeze({
  /** All of stop(), under runMain's forced exit (FORCE_EXIT_MS, itself under 10 s). */
  totalMs: FORCE_EXIT_MS - 500,
  /** Resign the election, withdraw the worker registration, remove the node announcement. */
  znodesMs: 500,
  /** Jobs still running when the grace ends are aborted; their hand-back reports are awaited this long. */
  handBackMs: 1500,
  /** Waiting for the boss to acknowledge this worker's results. */
  flushMs: 1000,
  /** Closing the job store, the ZooKeeper session and NATS, then ending the function threads. */
  closeMs: 1000,
})

/** The largest WORKER_SHUTDOWN_GRACE_MS: what SHUTDOWN_BUDGET leaves for running jobs to finish (5000). */
export const MAX_SHUTDOWN_GRACE_MS =
  SHUTDOWN_BUDGET.totalMs -
  SHUTDOWN_BUDGET.znodesMs -
  SHUTDOWN_BUDGET.handBackMs -
  SHUTDOWN_BUDGET.flushMs -
  SHUTDOWN_BUDGET.closeMs
const DEFAULT_SHUTDOWN_GRACE_MS = MAX_SHUTDOWN_GRACE_MS

export const workerEnv = {
  WORKER_CONCURRENCY: {
    type: 'int',
    default: DEFAULT_WORKER_CONCURRENCY,
    min: 1,
    max: 1024,
    doc: 'jobs one worker runs at once',
  },
  WORKER_PREFETCH: {
    type: 'int',
    min: 0,
    max: MAX_PREFETCH_PER_SLOT * 1024,
    doc:
      'jobs of short functions the boss may dispatch to this worker beyond its WORKER_CONCURRENCY slots; each ' +
      'waits here and starts the moment a slot frees, without a round trip to the boss; the boss sends no more ' +
      'than the slots run in 50 ms (README "Prefetch"). At most 4 × WORKER_CONCURRENCY, its default; 0 = off',
  },
  FUNCTION_THREADS: {
    type: 'int',
    min: 1,
    max: 1024,
    doc:
      'worker threads the WORKER_CONCURRENCY jobs share (each holds up to ⌈concurrency / threads⌉ at once; a ' +
      'function that holds a thread, ignores its abort signal or dies with others runs alone from then on, on ' +
      'more threads if needed); at most WORKER_CONCURRENCY (default: the smaller of it and the machine’s cores; ' +
      '= WORKER_CONCURRENCY for one job per thread)',
  },
  FUNCTIONS_DIR: {
    type: 'string',
    doc: 'folder of job functions this worker loads (default: the bundled examples in worker/functions)',
  },
  FUNCTION_ISOLATION: {
    type: 'enum',
    values: ['declared', 'threads'],
    default: 'declared',
    doc:
      "where job functions run: 'declared' — on worker threads, except functions that declare " +
      "`export const config = { isolation: 'inline' }` (run on the main thread, moved back to threads " +
      "if one ever blocks it); 'threads' — always on threads",
  },
  JOB_STORE_REPLICAS: {
    type: 'int',
    default: 1,
    min: 1,
    max: 5,
    doc: 'JetStream replicas of the job store (3 for a clustered NATS); used when bosun creates the bucket',
  },
  JOB_RETENTION_MS: {
    type: 'int',
    default: DEFAULT_RETENTION_MS,
    min: 1000,
    max: 365 * 24 * 3600 * 1000,
    doc: 'finished jobs are removed from the store this long after they finish',
  },
  BOSS_RUNNING_WRITE_DELAY_MS: {
    type: 'int',
    default: 50,
    min: 0,
    max: 60_000,
    doc: "a job's `running` state is stored only if it still runs after this long (saves a write per short job)",
  },
  BOSS_RECONCILE_INTERVAL_MS: {
    type: 'int',
    default: 2000,
    min: 100,
    max: 600_000,
    doc: 'how often the boss checks with workers for lost dispatches and unacknowledged results',
  },
  WORKER_SHUTDOWN_GRACE_MS: {
    type: 'int',
    default: DEFAULT_SHUTDOWN_GRACE_MS,
    min: 0,
    max: MAX_SHUTDOWN_GRACE_MS,
    doc:
      'on SIGTERM, running jobs get this long to finish before they are handed back to the boss; at most ' +
      `${MAX_SHUTDOWN_GRACE_MS}, so that deleting the znodes, the grace, the hand-back, the result flush and closing ` +
      'fit in the 10 s a stop may take',
  },
  FUNCTION_KILL_GRACE_MS: {
    type: 'int',
    default: 1000,
    min: 0,
    max: 60_000,
    doc: 'after a timeout or cancel, a function that ignores its signal is stopped the hard way after this long',
  },
  MAX_RESULT_BYTES: {
    type: 'int',
    default: 900 * 1024,
    min: 1024,
    max: 64 * 1024 * 1024,
    doc: 'largest JSON result a function may return (must stay under the NATS max payload)',
  },
  JOB_LOG_MAX_LINES: {
    type: 'int',
    default: DEFAULT_JOB_LOG_MAX_LINES,
    min: 1,
    max: 100_000,
    doc: 'ctx.log lines kept per job across its attempts (the last ones; GET /jobs/:id/logs)',
  },
  JOB_LOG_MAX_BYTES: {
    type: 'int',
    default: DEFAULT_JOB_LOG_MAX_BYTES,
    min: 1024,
    max: 512 * 1024,
    doc: 'encoded bytes of the ctx.log lines kept per job (the last ones; stays under the NATS max payload)',
  },
  METRICS_PORT: {
    type: 'int',
    default: 0,
    min: 0,
    max: 65535,
    doc: 'port of the Prometheus `GET /metrics` endpoint of this worker (README "Metrics"); 0 = off',
  },
  METRICS_HOST: {
    type: 'string',
    default: '127.0.0.1',
    pattern: /^[A-Za-z0-9.:\-[\]%]{1,255}$/,
    patternDoc: 'a host name or IP address',
    doc: 'listen address of METRICS_PORT (0.0.0.0 for a Prometheus on another machine)',
  },
} as const satisfies Record<string, EnvSpec>

export interface WorkerConfig {
  readonly runtime: RuntimeConfig
  readonly concurrency: number
  /** WORKER_PREFETCH: dispatched jobs held beyond the running slots. */
  readonly prefetch: number
  /** FUNCTION_THREADS; undefined: the pool's default (min(concurrency, cores)). */
  readonly threads: number | undefined
  readonly functionsDir: string | undefined
  readonly storeReplicas: number
  readonly isolation: FunctionIsolation
  readonly shutdownGraceMs: number
  readonly killGraceMs: number
  readonly maxResultBytes: number
  readonly boss: BossSettings
  /** Prometheus endpoint port (0: off) and listen address. */
  readonly metricsPort: number
  readonly metricsHost: string
  /** Completion callbacks (delivered by the acting boss). */
  readonly callbacks: CallbackSettings
  /** ctx.log lines kept per job: JOB_LOG_MAX_LINES, JOB_LOG_MAX_BYTES. */
  readonly jobLog: { readonly maxLines: number; readonly maxBytes: number }
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const e = parseEnv({ ...runtimeEnv, ...workerEnv, ...callbackEnv }, env)
  if (e.FUNCTION_THREADS !== undefined && e.FUNCTION_THREADS > e.WORKER_CONCURRENCY)
    throw errors.CONFIG(
      `FUNCTION_THREADS (${e.FUNCTION_THREADS}) must not exceed WORKER_CONCURRENCY (${e.WORKER_CONCURRENCY})`,
    )
  const maxPrefetch = MAX_PREFETCH_PER_SLOT * e.WORKER_CONCURRENCY
  if (e.WORKER_PREFETCH !== undefined && e.WORKER_PREFETCH > maxPrefetch)
    throw errors.CONFIG(
      `WORKER_PREFETCH (${e.WORKER_PREFETCH}) must not exceed ` +
        `${MAX_PREFETCH_PER_SLOT} × WORKER_CONCURRENCY (${maxPrefetch})`,
    )
  return Object.freeze({
    runtime: runtimeConfigFrom(e),
    concurrency: e.WORKER_CONCURRENCY,
    prefetch: e.WORKER_PREFETCH ?? maxPrefetch,
    threads: e.FUNCTION_THREADS,
    functionsDir: e.FUNCTIONS_DIR,
    storeReplicas: e.JOB_STORE_REPLICAS,
    isolation: e.FUNCTION_ISOLATION as FunctionIsolation,
    shutdownGraceMs: e.WORKER_SHUTDOWN_GRACE_MS,
    killGraceMs: e.FUNCTION_KILL_GRACE_MS,
    maxResultBytes: e.MAX_RESULT_BYTES,
    metricsPort: e.METRICS_PORT,
    metricsHost: e.METRICS_HOST,
    callbacks: callbackSettingsFrom(e),
    jobLog: Object.freeze({ maxLines: e.JOB_LOG_MAX_LINES, maxBytes: e.JOB_LOG_MAX_BYTES }),
    boss: Object.freeze({
      ...DEFAULT_BOSS_SETTINGS,
      runningWriteDelayMs: e.BOSS_RUNNING_WRITE_DELAY_MS,
      reconcileIntervalMs: e.BOSS_RECONCILE_INTERVAL_MS,
      retentionMs: e.JOB_RETENTION_MS,
    }),
  })
}
