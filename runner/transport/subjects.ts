/**
 * Every NATS subject bosun uses is built here, so the naming scheme lives in one place.
 * Layout: `bosun.<cluster>.<kind>.<id…>` — the cluster token isolates clusters sharing servers.
 */
import { errors } from '../errors.js'

/** A subject token: no dots, wildcards or whitespace (NATS subject rules), at most 256 characters. */
const TOKEN = /^[^.*>\s]{1,256}$/

/** Root token of every bosun subject. */
export const SUBJECT_ROOT = 'bosun'

/** True when `token` can be one element of a NATS subject (no `.`, `*`, `>` or whitespace). */
export function isSubjectToken(token: string): boolean {
  return typeof token === 'string' && TOKEN.test(token)
}

/**
 * `bosun.<cluster>.<tokens…>`; throws BOSUN_ERR_BAD_MESSAGE when a token is not a valid subject token
 * (the last token may be the wildcard `*` or `>` so callers can build subscription subjects).
 */
export function subjectFor(cluster: string, ...tokens: string[]): string {
  const all = [cluster, ...tokens]
  all.forEach((t, i) => {
    const lastWildcard = i === all.length - 1 && i > 0 && (t === '*' || t === '>')
    if (!lastWildcard && !isSubjectToken(t)) {
      throw errors.BAD_MESSAGE(`invalid subject token ${JSON.stringify(t)}`, { details: { token: t } })
    }
  })
  return [SUBJECT_ROOT, ...all].join('.')
}

/** A token that must name one thing (no wildcard). */
function exactToken(token: string): string {
  if (!isSubjectToken(token))
    throw errors.BAD_MESSAGE(`invalid subject token ${JSON.stringify(token)}`, { details: { token } })
  return token
}

/** The address of one process: `bosun.<cluster>.proc.<nodeId>`. */
export function procSubject(cluster: string, nodeId: string): string {
  return subjectFor(cluster, 'proc', exactToken(nodeId))
}

/**
 * The boss's notices of finished jobs, many per message (`{ jobs: [{ id, state }] }`, see
 * worker/boss/finished-notices.ts): `bosun.<cluster>.events.finished`. One subject, so an API
 * process holds one subscription for all its waiting requests.
 */
export function finishedJobsSubject(cluster: string): string {
  return subjectFor(cluster, 'events', 'finished')
}

/**
 * Final records of waited jobs as the boss starts writing them (`{ jobs: [{ id, state, job, ack }] }`):
 * tentative until JetStream acknowledges the write on the `ack` subject, which the APIs hear too
 * (api/final-pairs.ts). Not on `events.finished`: its listeners take an entry as durable.
 */
export function finishingJobsSubject(cluster: string): string {
  return subjectFor(cluster, 'events', 'finishing')
}

/**
 * Reply subjects of one boss's announced final writes: `bosun.<cluster>.acks.<owner>.<n>`. JetStream
 * acknowledges such a write there; the boss listens on its own prefix, every API on all of them.
 */
export function finalAcksPrefix(cluster: string, owner: string): string {
  return `${subjectFor(cluster, 'acks', exactToken(owner))}.`
}

/** Every boss's announced-write acknowledgements (what an API subscribes to). */
export function finalAcksSubjects(cluster: string): string {
  return subjectFor(cluster, 'acks', '>')
}

/** The acting boss's periodic load report (queued / running jobs): `bosun.<cluster>.events.boss`. */
export function bossStatsSubject(cluster: string): string {
  return subjectFor(cluster, 'events', 'boss')
}
