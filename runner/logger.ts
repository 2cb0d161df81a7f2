/** One root pino logger per process; every part takes `logger.child({ component })`. */
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
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    })
  }
  return pino({ level, base })
}

/** A logger that writes nothing (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
