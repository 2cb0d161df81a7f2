/**
 * FunctionExecutor: the catalog and the pool together, in the shape the worker agent needs
 * (worker/agent/worker-agent.ts `Executor`): run a job by function *name*.
 */
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import { loadCatalog, type FunctionCatalog } from './catalog.js'
import { failure, type AbortReason, type LiveChannel, type RunHandle } from './outcomes.js'
import { DEFAULT_FUNCTIONS_DIR } from './paths.js'
import { FunctionPool } from './pool.js'
import {
  DEFAULT_ABORT_GRACE_MS,
  DEFAULT_MAX_RESULT_BYTES,
  type FunctionPoolOptions,
  type PoolStats,
} from './pool-types.js'
import { InlineRunner } from './inline.js'
import { LimitsProblem, parseDeclaredLimits, type FunctionLimits } from '../../jobs/limits.js'
import type { ModuleDeclaration } from './module-describer.js'

export interface ExecutorRunRequest {
  jobId: string
  /** 1-based. */
  attempt: number
  /** Function name, as in the catalog. */
  fn: string
  payload: unknown
  /** 0 or absent: no timeout. */
  timeoutMs?: number
  /** Where ctx.progress and ctx.log are kept (worker/agent/live-recorder.ts); absent: not kept. */
  live?: LiveChannel | undefined
}

/** Where functions run: as each declares (inline when it says so), or always on threads. */
export type FunctionIsolation = 'declared' | 'threads'

export interface ExecutorOptions extends Omit<FunctionPoolOptions, 'logger'> {
  /** Folder of job functions (FUNCTIONS_DIR). @defaultValue DEFAULT_FUNCTIONS_DIR (the bundled examples) */
  functionsDir?: string
  /** FUNCTION_ISOLATION. @defaultValue 'declared' */
  isolation?: FunctionIsolation
  logger: Logger
}

export class FunctionExecutor {
  constructor(
    /** The functions this executor can run. */
    readonly catalog: FunctionCatalog,
    private readonly pool: FunctionPool,
    /** Functions that declared inline isolation (none when FUNCTION_ISOLATION=threads). */
    private readonly inline?: InlineRunner,
    /** The limits each function's module declares (README "Limits"), by function name; advertised to the boss. */
    readonly limits: Readonly<Record<string, FunctionLimits>> = {},
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
    if (this.inline?.handles(file)) {
      return this.inline.run({
        jobId: req.jobId,
        attempt: req.attempt,
        file,
        payload: req.payload,
        timeoutMs: req.timeoutMs,
        live: req.live,
      })
    }
    return this.pool.run({
      jobId: req.jobId,
      attempt: req.attempt,
      functionFile: file,
      payload: req.payload,
      timeoutMs: req.timeoutMs,
      live: req.live,
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
  const { functionsDir = DEFAULT_FUNCTIONS_DIR, isolation = 'declared', logger, ...poolOpts } = opts
  const catalog = await loadCatalog(functionsDir, logger)
  const pool = new FunctionPool({ ...poolOpts, logger })
  try {
    await pool.ready()
  } catch (err) {
    await pool.close()
    throw errors.CONFIG(`function threads cannot start: ${(err as Error).message}`, { cause: err })
  }
  // What functions declare (inline isolation, limits): read off their modules, imported in a thread.
  const files = catalog.names.map((n) => catalog.resolve(n)!)
  const declared = await pool.describe(files)
  const limits = declaredLimits(catalog, declared, logger)
  if (isolation === 'threads') return new FunctionExecutor(catalog, pool, undefined, limits)
  const inlineFiles = new Set(files.filter((f) => declared.get(f)?.inline === true))
  if (inlineFiles.size > 0) {
    logger.info(
      { functions: [...inlineFiles].map((f) => catalog.names.find((n) => catalog.resolve(n) === f)) },
      'functions running inline',
    )
  }
  const inline = new InlineRunner(inlineFiles, {
    maxResultBytes: poolOpts.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES,
    abortGraceMs: poolOpts.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS,
    logger,
  })
  return new FunctionExecutor(catalog, pool, inline, limits)
}

/** The limits of each module's config; a bad declaration is logged and ignored (the function runs unlimited). */
function declaredLimits(
  catalog: FunctionCatalog,
  declared: Map<string, ModuleDeclaration>,
  logger: Logger,
): Record<string, FunctionLimits> {
  const out: Record<string, FunctionLimits> = {}
  for (const name of catalog.names) {
    const raw = declared.get(catalog.resolve(name)!)?.limits
    if (raw === undefined) continue
    try {
      out[name] = parseDeclaredLimits(raw)
    } catch (err) {
      const why = err instanceof LimitsProblem ? err.message : 'its config cannot be read'
      logger.error({ function: name, problem: why }, 'a function declares bad limits: they are ignored')
    }
  }
  if (Object.keys(out).length > 0) logger.info({ limits: out }, 'functions declare limits')
  return out
}
