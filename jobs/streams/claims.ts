/**
 * Idempotency keys, as every submitter (the API, the native client) resolves them: claim the key
 * for the new job's id; if another job holds it, that job is the answer — unless its job was never
 * stored (its creator died between the claim and the store): a claim that old is taken over; a
 * younger one is answered "retry shortly" (its creator may still be storing it) — unless this
 * process is its creator and knows it gave up before storing: then it is taken over at once.
 */
import { errors } from '../../runner/errors.js'
import type { Job } from '../model.js'
import type { Claim } from './submit.js'

/** A claim naming a job that was never stored is taken over after this long (a live creator stores within seconds). */
export const ABANDONED_CLAIM_MS = 60_000

/** How many abandoned job ids a process remembers (the oldest are forgotten first). */
const MAX_ABANDONED_IDS = 100_000

/**
 * Job ids this process claimed idempotency keys for but will never store: the request's claims
 * failed or timed out (the link stalled; a claim may have landed without its answer) before its
 * publish was sent. A retry meeting such a claim takes it over at once instead of waiting for
 * ABANDONED_CLAIM_MS; remembered that long, bounded in number.
 */
export class AbandonedClaims {
  private readonly ids = new Map<string, number>()

  /** Only for ids whose publish was never sent: a sent publish may still land. */
  add(jobIds: Iterable<string>): void {
    const now = Date.now()
    for (const [id, at] of this.ids) {
      if (now - at <= ABANDONED_CLAIM_MS && this.ids.size < MAX_ABANDONED_IDS) break
      this.ids.delete(id)
    }
    for (const id of jobIds) this.ids.set(id, now)
  }

  has(jobId: string): boolean {
    const at = this.ids.get(jobId)
    return at !== undefined && Date.now() - at <= ABANDONED_CLAIM_MS
  }
}

export interface ClaimPorts {
  claim(key: string, jobId: string): Promise<Claim>
  repoint(key: string, abandoned: Claim, jobId: string): Promise<Claim>
  get(id: string): Promise<Job | null>
  /** This process gave up on storing job `jobId` before sending it (AbandonedClaims). */
  abandoned(jobId: string): boolean
}

/** Claim `key` for `id`: null when the claim is ours (store the job), else the job that holds it. */
export async function resolveClaim(p: ClaimPorts, key: string, id: string): Promise<Job | null> {
  let claim = await p.claim(key, id)
  for (let moves = 0; moves < 3; moves++) {
    if (claim.jobId === id) return null
    const holder = await p.get(claim.jobId)
    if (holder) return holder
    const age = Date.now() - Date.parse(claim.claimedAt)
    if (!(age > ABANDONED_CLAIM_MS) && !p.abandoned(claim.jobId)) {
      throw errors.UNAVAILABLE('another request with this idempotencyKey is storing its job; retry shortly', {
        retryAfterSeconds: 1,
      })
    }
    claim = await p.repoint(key, claim, id)
  }
  throw errors.UNAVAILABLE('the idempotencyKey is contended; retry shortly', { retryAfterSeconds: 1 })
}
