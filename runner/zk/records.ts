/**
 * The JSON stored in bosun's znodes (version field `v: 1`), with strict parsing: data that does not
 * match is reported as a reason string so the caller can skip it with a warning, never crash.
 *
 * - registration (services/<svc>/<node>, nodes/<node>): `{ v, id, address, host, pid, meta, registeredAt }`
 * - election node (elections/<name>/<guid>-n_<seq>): `{ v, id, address, host, pid }`, plus
 *   `epoch` and `since` once its owner leads
 * - epoch counter (epochs/<name>): `{ v, epoch }`
 */
import { NO_OWNER } from './primitives.js'
import type { LeaderInfo, Meta, ServiceEntry } from '../contracts.js'

export interface Identity {
  readonly id: string
  readonly host: string
  readonly pid: number
}

type Json = Record<string, unknown>

function parseObject(data: Buffer): Json | string {
  if (data.length === 0) return 'empty data'
  let value: unknown
  try {
    value = JSON.parse(data.toString('utf8'))
  } catch {
    return 'data is not JSON'
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'data is not a JSON object'
  if ((value as Json).v !== 1) return 'unknown data version'
  return value as Json
}

function isMeta(value: unknown): value is Meta {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkIdentity(o: Json): string | undefined {
  if (typeof o.id !== 'string' || o.id === '') return 'missing id'
  if (typeof o.address !== 'string' || o.address === '') return 'missing address'
  if (typeof o.host !== 'string') return 'missing host'
  if (typeof o.pid !== 'number' || !Number.isInteger(o.pid)) return 'missing pid'
  return undefined
}

export function encodeRegistration(who: Identity, address: string, meta: Meta, registeredAt: string): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, id: who.id, address, host: who.host, pid: who.pid, meta, registeredAt }))
}

/** A registration stored under a child named `child` (the node id): the entry, or why it is invalid. */
export function parseRegistration(child: string, data: Buffer): ServiceEntry | string {
  const o = parseObject(data)
  if (typeof o === 'string') return o
  const bad = checkIdentity(o)
  if (bad) return bad
  if (o.id !== child) return `id ${JSON.stringify(o.id)} does not match the node name`
  if (!isMeta(o.meta)) return 'meta is not an object'
  if (typeof o.registeredAt !== 'string') return 'missing registeredAt'
  return {
    id: o.id,
    address: o.address as string,
    host: o.host as string,
    pid: o.pid as number,
    meta: o.meta,
    registeredAt: o.registeredAt,
  }
}

export function encodeCandidate(who: Identity, address: string, leader?: { epoch: number; since: string }): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, id: who.id, address, host: who.host, pid: who.pid, ...(leader ?? {}) }))
}

/**
 * The LeaderInfo in an election node; null when the node's owner has not fenced its leadership yet
 * (no epoch written); a string when the data is invalid.
 */
export function parseLeader(data: Buffer): LeaderInfo | null | string {
  const o = parseObject(data)
  if (typeof o === 'string') return o
  const bad = checkIdentity(o)
  if (bad) return bad
  if (o.epoch === undefined) return null
  if (typeof o.epoch !== 'number' || !Number.isSafeInteger(o.epoch) || o.epoch < 1) return 'invalid epoch'
  if (typeof o.since !== 'string') return 'missing since'
  return {
    id: o.id as string,
    address: o.address as string,
    host: o.host as string,
    pid: o.pid as number,
    epoch: o.epoch,
    since: o.since,
  }
}

export function encodeEpoch(epoch: number): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, epoch }))
}

/** The stored epoch (0 for an empty/new counter); a string when the data is invalid. */
export function parseEpoch(data: Buffer): number | string {
  if (data.length === 0) return 0
  const o = parseObject(data)
  if (typeof o === 'string') return o
  if (typeof o.epoch !== 'number' || !Number.isSafeInteger(o.epoch) || o.epoch < 0) return 'invalid epoch'
  return o.epoch
}

/** Same entries (by value), order-insensitive on `id`. */
export function sameEntries(a: readonly ServiceEntry[], b: readonly ServiceEntry[]): boolean {
  if (a.length !== b.length) return false
  const key = (e: ServiceEntry) => JSON.stringify([e.id, e.address, e.host, e.pid, e.meta, e.registeredAt])
  const left = a.map(key).sort()
  const right = b.map(key).sort()
  return left.every((k, i) => k === right[i])
}

/** The sequence number of an election node `<guid>-n_<seq>`; undefined for anything else. */
export function electionSequence(name: string): number | undefined {
  const m = /-n_(\d{10,})$/.exec(name)
  return m ? Number(m[1]) : undefined
}

/** Election nodes in election order (numeric suffix; README "Design notes", recipe 1); other names are dropped. */
export function sortElectionNodes(children: readonly string[]): string[] {
  return children
    .filter((c) => electionSequence(c) !== undefined)
    .sort((a, b) => electionSequence(a)! - electionSequence(b)! || (a < b ? -1 : a > b ? 1 : 0))
}

/**
 * True for a node that can be a live candidate: ephemeral, with candidate data. Anything else under
 * an election (a persistent node, garbage data — someone else's write) is skipped, never waited on.
 */
export function isLiveCandidate(data: Buffer, ephemeralOwner: string): boolean {
  return ephemeralOwner !== NO_OWNER && typeof parseLeader(data) !== 'string'
}
