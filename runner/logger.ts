/** One root pino logger per process; every part takes `logger.child({ component })`. */
import { join } from 'node:path'
import { pino, type Logger, type LevelWithSilentOrString } from 'pino'

export type { Logger }

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export function createLogger(opts: { level?: LevelWithSilentOrString; name?: string; pretty?: boolean } = {}): Logger {
  const level = opts.level ?? 'info'
  const base = { name: opts.name ?? 'bosun' }
  if (opts.pretty) {
    return pino({
      level,
      base,
      // one line per event (runner/log-pretty.ts), from the compiled module next to this one
      transport: { target: join(import.meta.dirname, 'log-pretty.js'), options: {} },
    })
  }
  return pino({ level, base })
}

/** A logger that writes nothing (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
