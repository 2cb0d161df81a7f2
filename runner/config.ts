/** The runtime's configuration (ZooKeeper, NATS, cluster namespace, logging), parsed once from env. */
import { hostname } from 'node:os'
import { parseEnv, type EnvSpec, type ParsedEnv } from './env.js'
import { LOG_LEVELS } from './logger.js'

export const DEFAULT_ZK_CONNECT = '127.0.0.1:2181'
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222'
export const DEFAULT_CLUSTER = 'bosun'
export const DEFAULT_ZK_SESSION_TIMEOUT_MS = 6000
/** Cluster events are kept 7 days (BOSUN_EVENT_RETENTION_MS). */
export const DEFAULT_EVENT_RETENTION_MS = 7 * 24 * 3600 * 1000

/** host:port[,host:port…][/chroot] */
const ZK_CONNECT_PATTERN =
  /^[A-Za-z0-9.\-_[\]:]+:\d{1,5}(,[A-Za-z0-9.\-_[\]:]+:\d{1,5})*(\/[A-Za-z0-9_.\-/]*[A-Za-z0-9_.-])?$/
/** A cluster name is a ZooKeeper path element, a NATS subject token and part of a JetStream name. */
export const CLUSTER_PATTERN = /^[A-Za-z0-9_-]{1,48}$/

export const runtimeEnv = {
  ZK_CONNECT: {
    type: 'string',
    default: DEFAULT_ZK_CONNECT,
    pattern: ZK_CONNECT_PATTERN,
    patternDoc: 'host:port[,host:port…][/chroot]',
    doc: 'ZooKeeper connect string; may end in a chroot (created if missing)',
  },
  ZK_SESSION_TIMEOUT_MS: {
    type: 'int',
    default: DEFAULT_ZK_SESSION_TIMEOUT_MS,
    min: 200,
    max: 120_000,
    doc: 'ZooKeeper session timeout; bounds crash failover (the server clamps it to [2,20] × its tickTime)',
  },
  ZK_AUTH: {
    type: 'string',
    pattern: /^[^:]+:.+$/,
    patternDoc: 'user:password',
    doc: 'digest credentials; when set every bosun znode gets an ACL only these credentials can change',
  },
  NATS_URL: {
    type: 'list',
    default: [DEFAULT_NATS_URL],
    itemPattern: /^(nats|tls|wss?):\/\/[^\s,]+$|^[A-Za-z0-9.\-_]+:\d{1,5}$/,
    patternDoc: 'nats://host:port',
    doc: 'one or more NATS servers, comma separated',
  },
  NATS_USER: { type: 'string', doc: 'NATS user (with NATS_PASS)' },
  NATS_PASS: { type: 'string', doc: 'NATS password' },
  NATS_TOKEN: { type: 'string', doc: 'NATS token' },
  NATS_CREDS: { type: 'string', doc: 'path of a NATS .creds file (JWT + nkey)' },
  NATS_TLS_CA: { type: 'string', doc: 'path of a CA certificate to verify the NATS servers (turns TLS on)' },
  NATS_TLS_CERT: { type: 'string', doc: 'path of a client certificate for NATS mutual TLS' },
  NATS_TLS_KEY: { type: 'string', doc: 'path of the client key for NATS_TLS_CERT' },
  BOSUN_CLUSTER: {
    type: 'string',
    default: DEFAULT_CLUSTER,
    pattern: CLUSTER_PATTERN,
    patternDoc: '[A-Za-z0-9_-]{1,48}',
    doc: 'namespace: ZooKeeper root path, NATS subject and bucket prefix; two clusters may share servers',
  },
  BOSUN_NODE_ID: {
    type: 'string',
    pattern: /^[A-Za-z0-9_-]{1,64}$/,
    patternDoc: '[A-Za-z0-9_-]{1,64}',
    doc: "this process's id in the cluster (default: random)",
  },
  BOSUN_EVENT_RETENTION_MS: {
    type: 'int',
    default: DEFAULT_EVENT_RETENTION_MS,
    min: 60_000,
    max: 366 * 24 * 3600 * 1000,
    doc: 'how long cluster events (boss elected / deposed, workers joined / left, …) are kept',
  },
  LOG_LEVEL: { type: 'enum', default: 'info', values: LOG_LEVELS, doc: 'pino log level' },
  LOG_PRETTY: { type: 'bool', default: false, doc: 'human-readable logs (npm start turns it on)' },
} as const satisfies Record<string, EnvSpec>

export interface ZkConfig {
  /** host:port list without the chroot. */
  readonly servers: string
  /** Chroot from the connect string ('' when none), e.g. '/prod'. */
  readonly chroot: string
  readonly sessionTimeoutMs: number
  /** user:password for digest auth, or undefined. */
  readonly auth: string | undefined
}

export interface NatsConfig {
  readonly servers: string[]
  readonly user?: string
  readonly pass?: string
  readonly token?: string
  readonly credsFile?: string
  readonly tls?: { caFile?: string; certFile?: string; keyFile?: string }
}

export interface RuntimeConfig {
  readonly cluster: string
  readonly nodeId: string | undefined
  readonly host: string
  readonly zk: ZkConfig
  readonly nats: NatsConfig
  readonly logLevel: string
  readonly logPretty: boolean
  /** How long cluster events are kept (runner/events). */
  readonly eventRetentionMs: number
}

export function splitZkConnect(connect: string): { servers: string; chroot: string } {
  const slash = connect.indexOf('/')
  if (slash === -1) return { servers: connect, chroot: '' }
  const chroot = connect.slice(slash).replace(/\/+$/, '')
  return { servers: connect.slice(0, slash), chroot: chroot === '/' ? '' : chroot }
}

export function runtimeConfigFrom(e: ParsedEnv<typeof runtimeEnv>): RuntimeConfig {
  const { servers, chroot } = splitZkConnect(e.ZK_CONNECT)
  const tls =
    e.NATS_TLS_CA || e.NATS_TLS_CERT
      ? {
          ...(e.NATS_TLS_CA ? { caFile: e.NATS_TLS_CA } : {}),
          ...(e.NATS_TLS_CERT ? { certFile: e.NATS_TLS_CERT } : {}),
          ...(e.NATS_TLS_KEY ? { keyFile: e.NATS_TLS_KEY } : {}),
        }
      : undefined
  return Object.freeze({
    cluster: e.BOSUN_CLUSTER,
    nodeId: e.BOSUN_NODE_ID,
    host: hostname(),
    zk: Object.freeze({ servers, chroot, sessionTimeoutMs: e.ZK_SESSION_TIMEOUT_MS, auth: e.ZK_AUTH }),
    nats: Object.freeze({
      servers: e.NATS_URL,
      ...(e.NATS_USER ? { user: e.NATS_USER } : {}),
      ...(e.NATS_PASS ? { pass: e.NATS_PASS } : {}),
      ...(e.NATS_TOKEN ? { token: e.NATS_TOKEN } : {}),
      ...(e.NATS_CREDS ? { credsFile: e.NATS_CREDS } : {}),
      ...(tls ? { tls } : {}),
    }),
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY,
    eventRetentionMs: e.BOSUN_EVENT_RETENTION_MS,
  })
}

/** Parse and validate the runtime's env once; throws BOSUN_ERR_CONFIG listing every bad value. */
export function loadRuntimeConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
  return runtimeConfigFrom(parseEnv(runtimeEnv, env))
}
