/**
 * The job store's shared codec: what a valid job id and a valid job record are (validated on the way
 * in, because anything can be written to a stream), and which NATS/JetStream errors the store treats
 * as "try again" rather than fatal.
 */
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream'
import { errors } from '../runner/errors.js'
import { retryDelay, sleep } from '../runner/retry.js'
import { historyFrom } from './attempts.js'
import { JOB_STATES, type Job } from './model.js'
import { isIsoTime, isObject, jobErrorFrom, optionalIsoTime, optionalString } from './parse.js'

/** A job id is one subject token (the store's ids are `<ULID>-<index>`). */
const JOB_ID = /^[A-Za-z0-9_=-]{1,200}$/

export function isValidJobId(id: unknown): id is string {
  return typeof id === 'string' && JOB_ID.test(id)
}

const isInt = (v: unknown, min = 0): v is number => Number.isSafeInteger(v) && (v as number) >= min

/**
 * Why a value is not a Job, or null when it is one. Agrees with the API's Job schema (api/schemas.ts):
 * whatever passes here can be answered by GET /jobs/:id without a serialisation error.
 */
export function jobShapeProblem(v: unknown): string | null {
  if (!isObject(v)) return 'not an object'
  const j = v
  if (!isValidJobId(j.id)) return 'bad id'
  if (typeof j.function !== 'string' || j.function.length === 0) return 'bad function'
  if (!JOB_STATES.includes(j.state as Job['state'])) return 'bad state'
  if (!isInt(j.attempts) || !isInt(j.maxAttempts)) return 'bad attempts'
  if (!('payload' in j)) return 'no payload'
  if (!Number.isSafeInteger(j.priority) || !isInt(j.timeoutMs)) return 'bad priority/timeout'
  if (!isIsoTime(j.createdAt)) return 'bad createdAt'
  if (!isInt(j.epoch)) return 'bad epoch'
  if (j.run !== undefined && !isInt(j.run)) return 'bad run'
  if (j.logged !== undefined && !isInt(j.logged)) return 'bad logged'
  if (!optionalString(j.reopenedBy)) return 'bad reopenedBy'
  if (j.history !== undefined && historyFrom(j.history) === undefined) return 'bad history'
  if (!optionalString(j.idempotencyKey) || !optionalString(j.worker)) return 'bad optional field'
  if (!optionalString(j.callbackUrl)) return 'bad callbackUrl'
  if (!optionalString(j.concurrencyKey)) return 'bad concurrencyKey'
  if (!optionalIsoTime(j.runAt) || !optionalIsoTime(j.startedAt) || !optionalIsoTime(j.finishedAt)) return 'bad time'
  if (j.error !== undefined && jobErrorFrom(j.error) === undefined) return 'bad error'
  if (j.cancelRequested !== undefined && typeof j.cancelRequested !== 'boolean') return 'bad cancelRequested'
  return null
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

/** A CAS write lost: the key's last revision is not the one we expected. */
export function isWrongLastSequence(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  )
}

/**
 * A delete by sequence found no such message (already deleted, or replaced under history 1). A
 * delete of a message already deleted is answered 10057 (JSStreamMsgDeleteFailedF, "no message
 * found") by nats-server 2.9, not 10037.
 */
export function isMessageGone(err: unknown): boolean {
  if (!(err instanceof JetStreamApiError)) return false
  if (err.code === 10043 || err.code === JetStreamApiCodes.NoMessageFound) return true
  return err.code === 10057 && /no message found/i.test(err.message)
}

/** The connection is closed for good (no retry can help). */
export function isClosedConnection(err: unknown): boolean {
  const name = (err as Error | undefined)?.name
  return name === 'ClosedConnectionError' || name === 'DrainingConnectionError'
}

/** JetStream API errors whose message says the cluster is momentarily unable to answer. */
const TRANSIENT_JETSTREAM_MESSAGE = new RegExp(
  [
    'temporarily unavailable',
    'no suitable peers',
    'insufficient resources',
    'not current',
    'offline',
    'no leader',
    'leader',
    'stream not found',
    'timeout',
  ].join('|'),
  'i',
)

/**
 * Failures that a retry may cure: no ack in time (the write may or may not have landed), JetStream
 * momentarily without a leader or responder (server restart, cluster failover), disconnected.
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error) || isClosedConnection(err)) return false
  if (err.name === 'TimeoutError' || err.name === 'JetStreamNotEnabled' || err.name === 'ConnectionError') return true
  if (err.name === 'RequestError') return true
  if (err instanceof JetStreamApiError) {
    if (err.status === 503 || err.code === 10008) return true
    return TRANSIENT_JETSTREAM_MESSAGE.test(err.message)
  }
  return /timeout|disconnect|no responders/i.test(err.message)
}

/**
 * Run `op` until it succeeds, retrying while JetStream is briefly away (isTransient) until
 * `deadline` (ms since the epoch); then, or on any other failure, BOSUN_ERR_STORE naming `what`.
 */
export async function untilStoreAnswers<T>(op: () => Promise<T>, deadline: number, what: string): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op()
    } catch (err) {
      if (!isTransient(err) || Date.now() > deadline)
        throw errors.STORE(`${what}: ${(err as Error).message}`, { cause: err })
      await sleep(retryDelay(attempt, 1000))
    }
  }
}
