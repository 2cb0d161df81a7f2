/**
 * Open the process's one NATS connection from the runtime config: servers, user/password, token,
 * .creds file, TLS files; reconnects forever; pings often enough to notice a dead server.
 */
import { readFileSync } from 'node:fs'
import {
  connect,
  credsAuthenticator,
  errors as natsErrors,
  type NatsConnection,
  type NodeConnectionOptions,
} from '@nats-io/transport-node'
import type { NatsConfig } from '../config.js'
import { errors } from '../errors.js'
import type { Logger } from '../logger.js'

/** Milliseconds between reconnect attempts (plus up to {@link RECONNECT_JITTER_MS} of jitter). */
export const RECONNECT_TIME_WAIT_MS = 250
export const RECONNECT_JITTER_MS = 100
/** Client pings every this many ms; {@link MAX_PINGS_OUT} unanswered pings mark the server dead (~6–9 s). */
export const PING_INTERVAL_MS = 3000
export const MAX_PINGS_OUT = 2
/** Handshake timeout of one connection attempt. */
export const CONNECT_TIMEOUT_MS = 10_000

export interface ConnectNatsOptions {
  /** Client name shown by the server's monitoring (e.g. `bosun-worker-<id>`). */
  name: string
  logger: Logger
  /**
   * Keep trying when no server answers at start instead of failing at once.
   * @defaultValue false — a process started with NATS down fails clearly.
   */
  waitOnFirstConnect?: boolean
}

/** Translate the config into nats.js connection options (exported for tests). */
export function natsConnectionOptions(cfg: NatsConfig, name: string): NodeConnectionOptions {
  const opts: NodeConnectionOptions = {
    servers: [...cfg.servers],
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: RECONNECT_TIME_WAIT_MS,
    reconnectJitter: RECONNECT_JITTER_MS,
    reconnectJitterTLS: RECONNECT_JITTER_MS,
    pingInterval: PING_INTERVAL_MS,
    maxPingOut: MAX_PINGS_OUT,
    timeout: CONNECT_TIMEOUT_MS,
    // nats.js otherwise builds an Error (with a stack) per request and per timeout timer just in
    // case it fails: measured at 10–14% of the API's and the boss's CPU. Errors keep their types.
    noAsyncTraces: true,
  }
  if (cfg.user !== undefined) {
    opts.user = cfg.user
    if (cfg.pass !== undefined) opts.pass = cfg.pass
  }
  if (cfg.token !== undefined) opts.token = cfg.token
  if (cfg.credsFile !== undefined) {
    let creds: Uint8Array
    try {
      creds = readFileSync(cfg.credsFile)
    } catch (err) {
      throw errors.CONFIG(`cannot read NATS_CREDS file ${cfg.credsFile}: ${(err as Error).message}`, { cause: err })
    }
    opts.authenticator = credsAuthenticator(creds)
  }
  if (cfg.tls !== undefined) {
    const tls: NonNullable<NodeConnectionOptions['tls']> = {}
    if (cfg.tls.caFile !== undefined) tls.caFile = cfg.tls.caFile
    if (cfg.tls.certFile !== undefined) tls.certFile = cfg.tls.certFile
    if (cfg.tls.keyFile !== undefined) tls.keyFile = cfg.tls.keyFile
    opts.tls = tls
  }
  return opts
}

/**
 * Connect to NATS. Resolves with the open connection; rejects with BOSUN_ERR_CONFIG when the
 * server refuses our credentials (or TLS files are unusable) and BOSUN_ERR_NATS_NOT_CONNECTED when
 * no server can be reached.
 */
export async function connectNats(cfg: NatsConfig, opts: ConnectNatsOptions): Promise<NatsConnection> {
  const log = opts.logger.child({ component: 'nats' })
  const options = natsConnectionOptions(cfg, opts.name)
  if (opts.waitOnFirstConnect) options.waitOnFirstConnect = true
  const where = cfg.servers.join(',')
  let nc: NatsConnection
  try {
    nc = await connect(options)
  } catch (err) {
    if (err instanceof natsErrors.AuthorizationError || err instanceof natsErrors.UserAuthenticationExpiredError) {
      throw errors.CONFIG(`NATS at ${where} refused our credentials: ${err.message}`, { cause: err })
    }
    const msg = (err as Error)?.message ?? String(err)
    if (/ENOENT|certificate|TLS|SSL|PEM|key/i.test(msg) && cfg.tls !== undefined) {
      throw errors.CONFIG(`NATS TLS setup failed for ${where}: ${msg}`, { cause: err })
    }
    throw errors.NATS_NOT_CONNECTED(`cannot connect to NATS at ${where}: ${msg}`, { cause: err })
  }
  log.info({ server: nc.getServer(), name: opts.name }, 'connected to NATS')
  return nc
}
