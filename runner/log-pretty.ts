/**
 * Human-readable logs (LOG_PRETTY=true, which `npm start` sets): ONE line per log event — time,
 * level, `[component]`, message, then the event's plain fields as `key=value` (epoch, job, worker,
 * reason, …) and an error's message, never a multi-line object dump or stack (a failover must be
 * followable as it scrolls by; LOG_PRETTY=false gives the full JSON). A pino transport module:
 * pino-pretty's message formatter is a function, which cannot cross into the transport's thread
 * as an option, so this module wraps pino-pretty there.
 */
import pinoPretty, { type PrettyOptions } from 'pino-pretty'

/** Fields the line shows elsewhere (the launcher prefixes each line with its process) or that add noise. */
const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'node', 'component', 'err', 'v'])
const MAX_FIELDS = 10
const MAX_VALUE = 80
/** An error's message is what a reader needs most: it gets more room. */
const MAX_ERROR = 400

function value(v: string | number | boolean, max = MAX_VALUE): string {
  const s = typeof v === 'string' ? v : String(v)
  const cut = s.length > max ? `${s.slice(0, max - 1)}…` : s
  return typeof v === 'string' && /[\s"=]/.test(cut) ? JSON.stringify(cut) : cut
}

/** `[component] message  key=value …  err="…"` of one log event. */
export function oneLine(log: Record<string, unknown>, messageKey: string): string {
  const component = typeof log.component === 'string' ? `[${log.component}] ` : ''
  const fields: string[] = []
  for (const [k, v] of Object.entries(log)) {
    if (SKIP.has(k) || k === messageKey) continue
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') continue
    if (fields.length === MAX_FIELDS) break
    fields.push(`${k}=${value(v)}`)
  }
  const err = log.err as { message?: unknown; code?: unknown } | undefined
  if (typeof err === 'object' && err !== null && typeof err.message === 'string') {
    const text = typeof err.code === 'string' ? `${err.code}: ${err.message}` : err.message
    fields.push(`err=${value(text, MAX_ERROR)}`)
  }
  const msg = typeof log[messageKey] === 'string' ? log[messageKey] : ''
  return `${component}${msg}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}`.replace(/[\r\n]+/g, ' ')
}

/** The pino-pretty options of a one-line log. */
export function oneLineOptions(colorize: boolean): PrettyOptions {
  return {
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name',
    // the fields are in the message (oneLine); pino-pretty 13 ends no line when singleLine and
    // hideObject are both set, so only hideObject
    hideObject: true,
    // `err` is shown by oneLine (its message); as an "error-like" key pino-pretty would print the stack
    errorLikeObjectKeys: [],
    messageFormat: (log, messageKey) => oneLine(log, messageKey),
  }
}

/**
 * The transport: pino starts it in a worker thread with the options of runner/logger.ts. Colours
 * when stdout is a terminal or FORCE_COLOR is set (the launcher sets it when its own output is
 * coloured), never under NO_COLOR.
 */
export default function transport(opts: { colorize?: boolean }) {
  return pinoPretty(oneLineOptions(opts.colorize ?? pinoPretty.isColorSupported))
}
