/**
 * The API's side of completion callbacks (README "Completion callbacks"): a callbackUrl must name
 * an allowed host (a 400 naming the field before anything is stored), and a job read by id shows
 * its callback's delivery state, read from the store beside the job.
 */
import { errors } from '../runner/errors.js'
import type { Logger } from '../runner/logger.js'
import type { Job, JobSpec } from '../jobs/model.js'
import { callbackUrlProblem, parseAllowList, type AllowList } from '../jobs/callbacks/policy.js'
import { viewOf, type CallbackStatus } from '../jobs/callbacks/store.js'
import type { StoreDeadline } from './store-deadline.js'

/** The hosts a callbackUrl may name (BOSUN_CALLBACK_ALLOW) and the delivery states. */
export interface ApiCallbacks {
  allow: AllowList
  status(jobId: string): Promise<CallbackStatus | null>
}

const NO_CALLBACKS = parseAllowList([])

/** Every callbackUrl of `specs` names an allowed host; else a 400 naming the field (and, in a batch, the item). */
export function checkCallbackUrls(
  specs: readonly JobSpec[],
  callbacks: ApiCallbacks | undefined,
  batch: boolean,
): void {
  const allow = callbacks?.allow ?? NO_CALLBACKS
  specs.forEach((spec, i) => {
    if (spec.callbackUrl === undefined) return
    const problem = callbackUrlProblem(spec.callbackUrl, allow)
    if (problem === null) return
    if (!batch) throw errors.VALIDATION(`callbackUrl ${problem}`, { details: { field: 'body.callbackUrl' } })
    throw errors.VALIDATION(`jobs[${i}] is invalid: callbackUrl ${problem}`, {
      details: { field: `body.jobs[${i}].callbackUrl`, index: i },
    })
  })
}

/** `job` (public) with its callback's delivery state, when it has a callbackUrl. */
export async function withCallbackState(
  job: Job,
  callbacks: ApiCallbacks | undefined,
  store: StoreDeadline,
  log: Logger,
): Promise<Job> {
  delete job.callback // never stored; only the status below says it
  if (job.callbackUrl === undefined || !callbacks) return job
  // The job is known: a delivery state that cannot be read leaves `callback` out rather than fail the GET.
  const status = await store
    .callOr(callbacks.status(job.id), 'read of the callback status', undefined)
    .catch((err: unknown) => {
      log.warn({ err, jobId: job.id }, 'callback status not read')
      return undefined
    })
  if (status === undefined) return job
  // A status of an older run (before a retry of the job) says nothing of this run's delivery.
  job.callback = status && status.run === (job.run ?? 0) ? viewOf(status) : { state: 'pending', attempts: 0 }
  return job
}
