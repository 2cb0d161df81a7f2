/**
 * One completion-callback POST (README "Completion callbacks"): the public job JSON, signed with
 * BOSUN_CALLBACK_SECRET, no redirect followed (a 3xx is an answer like any other non-2xx), the whole
 * exchange bounded by the timeout and at most RESPONSE_READ_BYTES of the answer read (the rest is
 * dropped with the connection). Never throws: the outcome is a status or why there was none.
 */
import { deliveryId, signature } from '../../jobs/callbacks/policy.js'
import type { PostOutcome } from './callback-plan.js'

/** The most of a receiver's answer that is read (and discarded). */
const RESPONSE_READ_BYTES = 4096

export interface CallbackPost {
  url: string
  jobId: string
  run: number
  attempt: number
  /** The exact bytes sent and signed. */
  body: Uint8Array
  secret: string
  timeoutMs: number
  /** Aborts the POST (the boss term ended). */
  signal: AbortSignal
}

export async function postCallback(p: CallbackPost): Promise<PostOutcome> {
  const timeout = AbortSignal.timeout(p.timeoutMs)
  const signal = AbortSignal.any([p.signal, timeout])
  try {
    const res = await fetch(p.url, {
      method: 'POST',
      redirect: 'manual',
      signal,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'bosun-callbacks/1',
        'x-bosun-signature': signature(p.secret, p.body),
        'x-bosun-job-id': p.jobId,
        'x-bosun-delivery-id': deliveryId(p.jobId, p.run),
        'x-bosun-delivery-attempt': String(p.attempt),
      },
      body: p.body,
    })
    await drain(res)
    return { status: res.status }
  } catch (err) {
    if (p.signal.aborted) return { error: 'stopped: the boss term ended' }
    if (timeout.aborted) return { error: `timeout after ${p.timeoutMs} ms` }
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause
    const code = typeof cause?.code === 'string' ? cause.code : undefined
    const message = typeof cause?.message === 'string' ? cause.message : (err as Error).message
    return { error: (code ?? message).slice(0, 200) }
  }
}

/** Read at most RESPONSE_READ_BYTES of the answer, then let the rest go (leaving the loop cancels the stream). */
async function drain(res: Response): Promise<void> {
  if (!res.body) return
  let read = 0
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      read += chunk.byteLength
      if (read >= RESPONSE_READ_BYTES) break
    }
  } catch {
    // an answer cut short is still an answer: its status stands
  }
}
