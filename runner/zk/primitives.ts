/**
 * Small ZooKeeper vocabulary shared by the session and the recipes: stats with the 8-byte Buffer
 * fields converted (README "Design notes", client hazard 7), watch events, create modes, ACLs, error classification and
 * znode-name validation.
 */
import { createHash } from 'node:crypto'
import zookeeper from 'node-zookeeper-client'
import { errors, isBosunError, type BosunError } from '../errors.js'

/** A znode stat with `czxid`/`mzxid` as bigint and `ephemeralOwner` as a hex session id. */
export interface ZkStat {
  readonly version: number
  readonly cversion: number
  readonly numChildren: number
  readonly dataLength: number
  readonly czxid: bigint
  readonly mzxid: bigint
  /** Hex session id of the owner; '0000000000000000' for a persistent node. */
  readonly ephemeralOwner: string
}

export const NO_OWNER = '0000000000000000'

function int64(buf: unknown): bigint {
  return Buffer.isBuffer(buf) && buf.length === 8 ? buf.readBigInt64BE(0) : 0n
}

/** Convert the client's raw stat (Buffers for 64-bit fields) to a ZkStat. */
export function toStat(raw: zookeeper.Stat): ZkStat {
  return {
    version: raw.version,
    cversion: raw.cversion,
    numChildren: raw.numChildren,
    dataLength: raw.dataLength,
    czxid: int64(raw.czxid),
    mzxid: int64(raw.mzxid),
    ephemeralOwner: Buffer.isBuffer(raw.ephemeralOwner) ? raw.ephemeralOwner.toString('hex') : NO_OWNER,
  }
}

export type WatchEventType = 'created' | 'deleted' | 'dataChanged' | 'childrenChanged'

/** A one-shot watch notification. */
export interface ZkWatchEvent {
  readonly type: WatchEventType
  readonly path: string
}

export type ZkWatcher = (event: ZkWatchEvent) => void

const EVENT_TYPES: Record<number, WatchEventType> = {
  [zookeeper.Event.NODE_CREATED]: 'created',
  [zookeeper.Event.NODE_DELETED]: 'deleted',
  [zookeeper.Event.NODE_DATA_CHANGED]: 'dataChanged',
  [zookeeper.Event.NODE_CHILDREN_CHANGED]: 'childrenChanged',
}

export function toWatchEvent(ev: zookeeper.Event): ZkWatchEvent {
  return { type: EVENT_TYPES[ev.getType()] ?? 'dataChanged', path: ev.getPath() }
}

export type CreateModeName = 'persistent' | 'ephemeral' | 'persistent-sequential' | 'ephemeral-sequential'

export const CREATE_MODES: Readonly<Record<CreateModeName, number>> = Object.freeze({
  persistent: zookeeper.CreateMode.PERSISTENT,
  ephemeral: zookeeper.CreateMode.EPHEMERAL,
  'persistent-sequential': zookeeper.CreateMode.PERSISTENT_SEQUENTIAL,
  'ephemeral-sequential': zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL,
})

export function isEphemeral(mode: CreateModeName): boolean {
  return mode === 'ephemeral' || mode === 'ephemeral-sequential'
}

/**
 * The ACL of every znode bosun creates: with digest credentials `user:pass`, ALL for that identity
 * and READ for the world; without, OPEN.
 */
export function aclFor(auth: string | undefined): zookeeper.ACL[] {
  if (!auth) return [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id('world', 'anyone'))]
  const user = auth.slice(0, auth.indexOf(':'))
  const digest = createHash('sha1').update(auth).digest('base64')
  return [
    new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id('digest', `${user}:${digest}`)),
    new zookeeper.ACL(zookeeper.Permission.READ, new zookeeper.Id('world', 'anyone')),
  ]
}

/** The client's error codes the recipes branch on. */
export const ZK_CODES = Object.freeze({
  CONNECTION_LOSS: -4,
  OPERATION_TIMEOUT: -7,
  NO_NODE: -101,
  NO_AUTH: -102,
  BAD_VERSION: -103,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
})
export type ZkCodeName = keyof typeof ZK_CODES

/** The ZooKeeper error code carried by a BosunError from the session, if any. */
export function zkCodeOf(err: unknown): number | undefined {
  if (!isBosunError(err)) return undefined
  const code = err.details?.zkCode
  return typeof code === 'number' ? code : undefined
}

/** True when `err` is a ZooKeeper error with the named code. */
export function isZkError(err: unknown, name: ZkCodeName): boolean {
  return zkCodeOf(err) === ZK_CODES[name]
}

/**
 * True when the outcome of a write is unknown (connection loss, timeout, session replaced):
 * the request may or may not have been applied.
 */
export function isUncertain(err: unknown): boolean {
  if (isBosunError(err, errors.ZK_TIMEOUT) || isBosunError(err, errors.ZK_NOT_CONNECTED)) return true
  const code = zkCodeOf(err)
  return code === ZK_CODES.CONNECTION_LOSS || code === ZK_CODES.OPERATION_TIMEOUT
}

/** True when `err` means the session is gone (the recipe waits for the next 'connected'). */
export function isSessionGone(err: unknown): boolean {
  return (
    isBosunError(err, errors.ZK_SESSION_LOST) ||
    isBosunError(err, errors.CLOSED) ||
    zkCodeOf(err) === ZK_CODES.SESSION_EXPIRED
  )
}

/** Wrap a client exception as a coded BosunError with `details.zkCode`. */
export function toZkError(op: string, path: string, err: unknown): BosunError {
  const raw = err as { code?: unknown; name?: unknown; message?: unknown }
  const zkCode = typeof raw?.code === 'number' ? raw.code : undefined
  const zkName = typeof raw?.name === 'string' ? raw.name : 'ERROR'
  const message = zkCode === undefined ? String(raw?.message ?? err) : `${zkName}[${zkCode}]`
  return errors.ZK(`ZooKeeper ${op} ${path} failed: ${message}`, { cause: err, details: { op, path, zkCode, zkName } })
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what it rejects
const BAD_NAME_CHARS = /[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff/]/u

/**
 * Validate one znode name element (a service, election or node name): non-empty, at most 200
 * characters, no '/', not '.' or '..', no control or reserved characters. Throws VALIDATION.
 */
export function assertNodeName(kind: string, name: unknown): asserts name is string {
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    name.length > 200 ||
    name === '.' ||
    name === '..' ||
    BAD_NAME_CHARS.test(name)
  ) {
    throw errors.VALIDATION(`invalid ${kind} name: ${JSON.stringify(name)}`, { details: { kind } })
  }
}

/** Data as bytes: Buffers pass through, strings are UTF-8, anything else is JSON. */
export type ZkData = Buffer | string | Record<string, unknown> | null | undefined

export function toBuffer(data: ZkData): Buffer | undefined {
  if (data === null || data === undefined) return undefined
  if (Buffer.isBuffer(data)) return data
  return Buffer.from(typeof data === 'string' ? data : JSON.stringify(data))
}

/** Error codes that are real answers of a live server (they confirm the session). */
export const ANSWERED_CODES: ReadonlySet<number> = new Set([
  ZK_CODES.NO_NODE,
  ZK_CODES.NODE_EXISTS,
  ZK_CODES.BAD_VERSION,
  ZK_CODES.NOT_EMPTY,
  ZK_CODES.NO_AUTH,
])
