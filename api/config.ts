/**
 * The API process's configuration, parsed once from env (runner/env.ts) and frozen.
 *
 * HOST defaults to loopback (127.0.0.1): a fresh checkout must not expose an unauthenticated job
 * runner — which runs code on request — to the network. Binding any other address requires
 * BOSUN_API_TOKENS (bearer auth), or an explicit BOSUN_API_INSECURE=true for setups that put
 * authentication in front (a gateway, a private network); otherwise loading the config fails.
 */
import { isIP } from 'node:net'
import { errors } from '../runner/errors.js'
import { describeEnv, type EnvSpec, type ParsedEnv, parseEnv } from '../runner/index.js'
import {
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_MAX_WAIT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from './app.js'
import type { RateLimitSettings } from './rate-limit.js'
import { ALLOW_ENTRY_PATTERN, parseAllowList, type AllowList } from '../jobs/callbacks/policy.js'

export const DEFAULT_PORT = 3000
export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_NO_BOSS_WAIT_MS = 2000
export const DEFAULT_MAX_QUEUED_JOBS = 100_000
/** Bearer tokens: at least 16 URL/base64-safe characters (e.g. `openssl rand -hex 16`). */
export const API_TOKEN_PATTERN = /^[A-Za-z0-9._~+/=-]{16,512}$/

export const apiEnv = {
  PORT: { type: 'int', default: DEFAULT_PORT, min: 0, max: 65535, doc: 'API listen port (0: any free port)' },
  HOST: {
    type: 'string',
    default: DEFAULT_HOST,
    pattern: /^[A-Za-z0-9.:\-[\]%]{1,255}$/,
    patternDoc: 'a host name or IP address',
    doc:
      'API listen address; loopback by default — a non-loopback address needs BOSUN_API_TOKENS ' +
      '(or BOSUN_API_INSECURE=true)',
  },
  BOSUN_API_TOKENS: {
    type: 'list',
    default: [],
    itemPattern: API_TOKEN_PATTERN,
    patternDoc: 'tokens of 16–512 characters [A-Za-z0-9._~+/=-]',
    doc:
      'comma-separated bearer tokens; when set, job routes, /cluster and /metrics require ' +
      '`Authorization: Bearer <token>`',
  },
  BOSUN_API_INSECURE: {
    type: 'bool',
    default: false,
    doc: 'allow a non-loopback HOST without BOSUN_API_TOKENS (auth done elsewhere)',
  },
  API_METRICS: {
    type: 'bool',
    default: true,
    doc: 'serve Prometheus metrics at GET /metrics (README "Metrics"); false: no /metrics, nothing counted',
  },
  API_BODY_LIMIT_BYTES: {
    type: 'int',
    default: DEFAULT_BODY_LIMIT_BYTES,
    min: 1024,
    max: 64 * 1024 * 1024,
    doc: 'largest request body; larger → 413',
  },
  API_MAX_WAIT_MS: {
    type: 'int',
    default: DEFAULT_MAX_WAIT_MS,
    min: 0,
    max: 15 * 60 * 1000,
    doc: 'largest `?wait=` of POST /jobs',
  },
  API_REQUEST_TIMEOUT_MS: {
    type: 'int',
    default: DEFAULT_REQUEST_TIMEOUT_MS,
    min: 500,
    max: 10 * 60 * 1000,
    doc:
      'a client must send a whole request (headers and body) within this; ' +
      'slower or stalled ones get 408 and are disconnected',
  },
  API_KEEP_ALIVE_TIMEOUT_MS: {
    type: 'int',
    default: DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    min: 100,
    max: 10 * 60 * 1000,
    doc: 'idle keep-alive connections are closed after this',
  },
  API_RATE_LIMIT_PER_MIN: {
    type: 'int',
    default: 0,
    min: 0,
    max: 10_000_000,
    doc: 'submit requests per minute per client (token, else IP); 0 = off',
  },
  BOSUN_MAX_QUEUED_JOBS: {
    type: 'int',
    default: DEFAULT_MAX_QUEUED_JOBS,
    min: 0,
    max: 100_000_000,
    doc: 'backpressure: past this many queued jobs submits answer 429 with Retry-After; 0 = no limit',
  },
  BOSUN_CALLBACK_ALLOW: {
    type: 'list',
    default: [],
    itemPattern: ALLOW_ENTRY_PATTERN,
    patternDoc: 'host names or IPs, optionally with :port, or *',
    doc:
      "hosts a job's `callbackUrl` may name (comma-separated; `host`, `host:port` or `*`); empty: any " +
      'callbackUrl is a 400 (README "Completion callbacks")',
  },
  API_NO_BOSS_WAIT_MS: {
    type: 'int',
    default: DEFAULT_NO_BOSS_WAIT_MS,
    min: 0,
    max: 60_000,
    doc: 'how long a submit waits for a boss to be elected before answering 503',
  },
} as const satisfies Record<string, EnvSpec>

export interface ApiConfig {
  readonly port: number
  readonly host: string
  /** Empty: auth off. */
  readonly apiTokens: readonly string[]
  readonly insecure: boolean
  readonly bodyLimitBytes: number
  readonly maxWaitMs: number
  /** Whole-request deadline (slow or half-sent requests → 408, socket closed). */
  readonly requestTimeoutMs: number
  /** Idle keep-alive connections are closed after this. */
  readonly keepAliveTimeoutMs: number
  /** undefined when API_RATE_LIMIT_PER_MIN is 0. */
  readonly rateLimit: RateLimitSettings | undefined
  /** For the JobService: wait this long for a boss before NO_BOSS (503). */
  readonly noBossWaitMs: number
  /** Backpressure limit on queued jobs (0: none). */
  readonly maxQueuedJobs: number
  /** GET /metrics and the counting behind it (API_METRICS). */
  readonly metrics: boolean
  /** Hosts a callbackUrl may name (BOSUN_CALLBACK_ALLOW). */
  readonly callbackAllow: AllowList
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.startsWith('127.')
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true
  return /^::ffff:127\./.test(h)
}

export function apiConfigFrom(e: ParsedEnv<typeof apiEnv>): ApiConfig {
  const tokens = Object.freeze([...new Set(e.BOSUN_API_TOKENS)])
  if (tokens.length === 0 && !isLoopbackHost(e.HOST) && !e.BOSUN_API_INSECURE) {
    throw errors.CONFIG(
      `invalid configuration:\n  - HOST=${JSON.stringify(e.HOST)} is not a loopback address ` +
        'and BOSUN_API_TOKENS is empty: set BOSUN_API_TOKENS to require bearer tokens, ' +
        'or BOSUN_API_INSECURE=true if authentication happens in front of the API',
    )
  }
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    apiTokens: tokens,
    insecure: e.BOSUN_API_INSECURE,
    bodyLimitBytes: e.API_BODY_LIMIT_BYTES,
    maxWaitMs: e.API_MAX_WAIT_MS,
    requestTimeoutMs: e.API_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: e.API_KEEP_ALIVE_TIMEOUT_MS,
    rateLimit:
      e.API_RATE_LIMIT_PER_MIN > 0 ? Object.freeze({ max: e.API_RATE_LIMIT_PER_MIN, timeWindowMs: 60_000 }) : undefined,
    noBossWaitMs: e.API_NO_BOSS_WAIT_MS,
    maxQueuedJobs: e.BOSUN_MAX_QUEUED_JOBS,
    metrics: e.API_METRICS,
    callbackAllow: parseAllowList(e.BOSUN_CALLBACK_ALLOW),
  })
}

/** Parse and validate the API's env once; throws BOSUN_ERR_CONFIG listing what is wrong. */
export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  return apiConfigFrom(parseEnv(apiEnv, env))
}

/** README rows for the API's variables. */
export function describeApiEnv(): string {
  return describeEnv(apiEnv)
}
