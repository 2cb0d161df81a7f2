/**
 * FunctionExecutor: the catalog and the pool together, in the shape the worker agent needs
 * (worker/agent/worker-agent.ts `Executor`): run a job by function *name*.
 */
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import { loadCatalog, type FunctionCatalog } from './catalog.js'
import { failure } from './outcomes.js'
import { DEFAULT_FUNCTIONS_DIR } from './paths.js'
import { FunctionPool, type AbortReason, type FunctionPoolOptions, type PoolStats, type RunHandle } from './pool.js'

export interface ExecutorRunRequest {
  jobId: string
  /** 1-based. */
  attempt: number
  /** Function name, as in the catalog. */
  fn: string
  payload: unknown
  /** 0 or absent: no timeout. */
  timeoutMs?: number
}

export interface ExecutorOptions extends Omit<FunctionPoolOptions, 'logger'> {
  /** Folder of job functions (FUNCTIONS_DIR). @defaultValue DEFAULT_FUNCTIONS_DIR (the bundled examples) */
  functionsDir?: string
  logger: Logger
}

export class FunctionExecutor {
  constructor(
    /** The functions this executor can run. */
    readonly catalog: FunctionCatalog,
    private readonly pool: FunctionPool,
  ) {}

  /** Jobs that run at once (threads). */
  get capacity(): number {
    return this.pool.capacity
  }

  /** Function names this worker advertises, sorted. */
  get functions(): readonly string[] {
    return this.catalog.names
  }

  /** Jobs running now. */
  get running(): number {
    return this.pool.running
  }

  stats(): PoolStats {
    return this.pool.stats()
  }

  /** Run a job; an unknown function is a failed outcome (BOSUN_ERR_UNKNOWN_FUNCTION), never a throw. */
  run(req: ExecutorRunRequest): RunHandle {
    const file = typeof req.fn === 'string' ? this.catalog.resolve(req.fn) : undefined
    if (file === undefined) {
      return {
        promise: Promise.resolve(
          failure(errors.UNKNOWN_FUNCTION.code, `this worker has no function ${JSON.stringify(req.fn)}`),
        ),
        abort: (_reason: AbortReason) => {},
      }
    }
    return this.pool.run({
      jobId: req.jobId,
      attempt: req.attempt,
      functionFile: file,
      payload: req.payload,
      timeoutMs: req.timeoutMs,
    })
  }

  /** Wait up to `timeoutMs` for running jobs, then close. */
  drain(timeoutMs: number): Promise<void> {
    return this.pool.drain(timeoutMs)
  }

  /** Abort running jobs ('shutdown') and end the threads. Idempotent. */
  close(): Promise<void> {
    return this.pool.close()
  }
}

/**
 * Load the catalog, start the threads and wait until they are up.
 * @throws BosunError BOSUN_ERR_CONFIG when the folder cannot be read or the threads cannot start.
 */
export async function createExecutor(opts: ExecutorOptions): Promise<FunctionExecutor> {
  const { functionsDir = DEFAULT_FUNCTIONS_DIR, logger, ...poolOpts } = opts
  const catalog = await loadCatalog(functionsDir, logger)
  const pool = new FunctionPool({ ...poolOpts, logger })
  try {
    await pool.ready()
  } catch (err) {
    await pool.close()
    throw errors.CONFIG(`function threads cannot start: ${(err as Error).message}`, { cause: err })
  }
  return new FunctionExecutor(catalog, pool)
}
