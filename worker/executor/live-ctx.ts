/**
 * ctx.progress and the kept ctx.log of inline runs (worker/executor/inline.ts); threaded runs do the
 * same in thread.mjs. A progress value is checked where the function calls it (a TypeError coded
 * BOSUN_ERR_BAD_PROGRESS for a bad one) and copied as JSON, so a later change of the object by the
 * function does not change what is kept.
 */
import { format } from 'node:util'
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import { progressProblem } from '../../jobs/live.js'
import type { LiveChannel } from './outcomes.js'

const LEVELS = ['debug', 'info', 'warn', 'error'] as const

/** ctx.progress of one run: throws a TypeError on a bad value, else hands a copy to `live`. */
export function progressOf(live: LiveChannel | undefined): (value: unknown) => void {
  return (value: unknown) => {
    const problem = progressProblem(value)
    if (problem !== undefined)
      throw Object.assign(new TypeError(`ctx.progress: ${problem}`), { code: errors.BAD_PROGRESS.code })
    live?.progress(typeof value === 'number' ? value : JSON.parse(JSON.stringify(value)))
  }
}

/** msg and fields of a pino-style call: (obj, msg, ...args), (err, msg?), (msg, ...args). */
function lineOf(args: unknown[]): { msg: string; fields: unknown } {
  const first = args[0]
  let fields: unknown
  let rest = args
  if (first instanceof Error) {
    fields = { err: { message: first.message, name: first.name } }
    rest = args.length > 1 ? args.slice(1) : [first.message]
  } else if (typeof first === 'object' && first !== null && !Array.isArray(first)) {
    fields = first
    rest = args.slice(1)
  }
  try {
    return { msg: format(...rest), fields }
  } catch {
    return { msg: '(unformattable log message)', fields }
  }
}

/**
 * ctx.log of an inline run whose lines are kept: the pino child itself for everything but the four
 * level calls, which also record the line — info and above always, debug when the logger takes it
 * (as the threads do).
 */
export function keptLog(child: Logger, live: LiveChannel): Logger {
  const wrapped = Object.create(child) as Logger
  for (const level of LEVELS) {
    const call: (...args: unknown[]) => void = child[level].bind(child)
    Object.defineProperty(wrapped, level, {
      value: (...args: unknown[]) => {
        call(...args)
        if (level === 'debug' && !child.isLevelEnabled('debug')) return
        const { msg, fields } = lineOf(args)
        live.log(level, msg, fields)
      },
    })
  }
  return wrapped
}
