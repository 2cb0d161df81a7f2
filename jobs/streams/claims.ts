/**
 * Idempotency keys, as every submitter (the API, the native client) resolves them: claim the key
 * for the new job's id; if another job holds it, that job is the answer — unless its job was never
 * stored (its creator died between the claim and the store): a claim that old is taken over; a
 * younger one is answered "retry shortly" (its creator may still be storing it).
 */
import { errors } from '../../runner/errors.js'
import type { Job } from '../model.js'
import type { Claim } from './submit.js'

/** A claim naming a job that was never stored is taken over after this long (a live creator stores within seconds). */
export const ABANDONED_CLAIM_MS = 60_000

export interface ClaimPorts {
  claim(key: string, jobId: string): Promise<Claim>
  repoint(key: string, abandoned: Claim, jobId: string): Promise<Claim>
  get(id: string): Promise<Job | null>
}

/** Claim `key` for `id`: null when the claim is ours (store the job), else the job that holds it. */
export async function resolveClaim(p: ClaimPorts, key: string, id: string): Promise<Job | null> {
  let claim = await p.claim(key, id)
  for (let moves = 0; moves < 3; moves++) {
    if (claim.jobId === id) return null
    const holder = await p.get(claim.jobId)
    if (holder) return holder
    const age = Date.now() - Date.parse(claim.claimedAt)
    if (!(age > ABANDONED_CLAIM_MS)) {
      throw errors.UNAVAILABLE('another request with this idempotencyKey is storing its job; retry shortly', {
        retryAfterSeconds: 1,
      })
    }
    claim = await p.repoint(key, claim, id)
  }
  throw errors.UNAVAILABLE('the idempotencyKey is contended; retry shortly', { retryAfterSeconds: 1 })
}
