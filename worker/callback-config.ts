/**
 * The workers' completion-callback settings (README "Completion callbacks"), parsed with the rest of
 * the worker's env (worker/config.ts). Every worker reads them: whichever becomes the boss delivers.
 * A non-empty BOSUN_CALLBACK_ALLOW without BOSUN_CALLBACK_SECRET is a startup error — a receiver
 * must be able to tell bosun's POSTs from anyone else's, so bosun never sends an unsigned callback.
 */
import { errors } from '../runner/errors.js'
import type { EnvSpec, ParsedEnv } from '../runner/index.js'
import { ALLOW_ENTRY_PATTERN, allowsNothing, parseAllowList, type AllowList } from '../jobs/callbacks/policy.js'

export interface CallbackSettings {
  /** Hosts the deliverer may POST to (re-checked before every attempt). */
  readonly allow: AllowList
  /** HMAC key of X-Bosun-Signature (undefined only while the allow list is empty: nothing is sent). */
  readonly secret: string | undefined
  /** One POST, connection to the end of the (bounded) response. */
  readonly timeoutMs: number
  /** Retries stop this long after the job finished: the delivery is `failed`. */
  readonly maxAgeMs: number
  /** The first retry's delay, doubling (with jitter) up to backoffMaxMs. */
  readonly backoffMs: number
  readonly backoffMaxMs: number
}

export const callbackEnv = {
  BOSUN_CALLBACK_ALLOW: {
    type: 'list',
    default: [],
    itemPattern: ALLOW_ENTRY_PATTERN,
    patternDoc: 'host names or IPs, optionally with :port, or *',
    doc: 'hosts the boss may POST completion callbacks to (as on the API); empty: no callback is sent',
  },
  BOSUN_CALLBACK_SECRET: {
    type: 'string',
    pattern: /^[\x21-\x7e]{16,512}$/,
    patternDoc: '16–512 printable ASCII characters without spaces (e.g. `openssl rand -hex 32`)',
    doc: 'HMAC-SHA256 key of `X-Bosun-Signature`; required when BOSUN_CALLBACK_ALLOW is set',
  },
  BOSUN_CALLBACK_TIMEOUT_MS: {
    type: 'int',
    default: 10_000,
    min: 100,
    max: 120_000,
    doc: 'one callback POST, from connecting to the end of the response (at most 4 KiB of it is read)',
  },
  BOSUN_CALLBACK_MAX_AGE_MS: {
    type: 'int',
    default: 24 * 3600 * 1000,
    min: 1000,
    max: 30 * 24 * 3600 * 1000,
    doc: 'a callback is retried until this long after its job finished, then its delivery is `failed`',
  },
  BOSUN_CALLBACK_BACKOFF_MS: {
    type: 'int',
    default: 1000,
    min: 10,
    max: 600_000,
    doc: 'delay before the first retry of a callback; doubles (with jitter) up to BOSUN_CALLBACK_BACKOFF_MAX_MS',
  },
  BOSUN_CALLBACK_BACKOFF_MAX_MS: {
    type: 'int',
    default: 5 * 60 * 1000,
    min: 10,
    max: 24 * 3600 * 1000,
    doc: 'longest delay between two attempts of a callback',
  },
} as const satisfies Record<string, EnvSpec>

export function callbackSettingsFrom(e: ParsedEnv<typeof callbackEnv>): CallbackSettings {
  const allow = parseAllowList(e.BOSUN_CALLBACK_ALLOW)
  const problems: string[] = []
  if (!allowsNothing(allow) && e.BOSUN_CALLBACK_SECRET === undefined)
    problems.push('BOSUN_CALLBACK_ALLOW is set but BOSUN_CALLBACK_SECRET is not: callbacks are always signed')
  if (e.BOSUN_CALLBACK_BACKOFF_MAX_MS < e.BOSUN_CALLBACK_BACKOFF_MS)
    problems.push('BOSUN_CALLBACK_BACKOFF_MAX_MS is below BOSUN_CALLBACK_BACKOFF_MS')
  if (problems.length > 0) throw errors.CONFIG(`invalid configuration:\n  - ${problems.join('\n  - ')}`)
  return Object.freeze({
    allow,
    secret: e.BOSUN_CALLBACK_SECRET,
    timeoutMs: e.BOSUN_CALLBACK_TIMEOUT_MS,
    maxAgeMs: e.BOSUN_CALLBACK_MAX_AGE_MS,
    backoffMs: e.BOSUN_CALLBACK_BACKOFF_MS,
    backoffMaxMs: e.BOSUN_CALLBACK_BACKOFF_MAX_MS,
  })
}
