/**
 * Process entry plumbing shared by `api` and `worker`: parse config once (a bad value is a clear
 * error and exit 1), start, and on SIGTERM/SIGINT stop gracefully and exit 0 — within the
 * contract's 10 s, forced after that. Stray errors are logged, never allowed to crash silently.
 */
import type { Logger } from './logger.js'

/**
 * After a stop signal, exit 1 if stop() has not finished by then: under the contract's 10 s. A process's
 * stop() plans its own phases inside a budget below this (the worker's: worker/config.ts SHUTDOWN_BUDGET).
 */
export const FORCE_EXIT_MS = 9500

export async function runMain<C, P extends { stop(): Promise<void> }>(
  name: string,
  loadConfig: () => C,
  makeLogger: (cfg: C) => Logger,
  start: (cfg: C, logger: Logger) => Promise<P>,
): Promise<void> {
  let cfg: C
  try {
    cfg = loadConfig()
  } catch (err) {
    process.stderr.write(`bosun ${name}: ${(err as Error).message}\n`)
    process.exit(1)
  }
  const logger = makeLogger(cfg)
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'))
  process.on('uncaughtException', (err) => logger.error({ err }, 'uncaught exception'))
  let proc: P
  try {
    proc = await start(cfg, logger)
  } catch (err) {
    logger.fatal({ err }, `${name} failed to start`)
    logger.flush?.()
    setTimeout(() => process.exit(1), 50)
    return
  }
  let stopping = false
  const shutdown = (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, `${name} stopping`)
    const force = setTimeout(() => {
      logger.error(`${name} did not stop in time; exiting`)
      process.exit(1)
    }, FORCE_EXIT_MS)
    force.unref()
    proc.stop().then(
      () => {
        logger.flush?.()
        process.exit(0)
      },
      (err: unknown) => {
        logger.error({ err }, 'stop failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
}
