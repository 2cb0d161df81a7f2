/**
 * A measured workload for fault tests: submits `count` jobs of the `start` test function through the
 * API (batches, retrying 503/429 and connection errors; every job carries an idempotency key, as a
 * careful client's would, so a retried batch whose 202 was lost in the fault names the jobs already
 * stored instead of adding copies), waits until every acknowledged job is final, and checks the
 * outcome against what the jobs themselves recorded — not against bosun's own `succeeded`:
 * job n writes a start line (`<jobId> <attempt> <pid> <epochMs> <n>`) before anything else and an end
 * line when it returns or is aborted, and returns `{ done: jobId, n }`. Jobs chosen by `waited` go
 * one by one through `POST /jobs?wait=1` instead: their submitter waits, so the workers that run them
 * write their final records themselves (worker/boss/worker-finals.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestCluster } from './processes.js'
import { uniqueName } from './servers.js'

export { logEntries, waitForLog, waitForNewBoss, type LogEntry } from './processes.js'

export interface WorkloadOptions {
  count: number
  /** Jobs per POST /jobs/batch. @defaultValue 100 */
  batchSize?: number
  /** Jobs in the first batch (e.g. the long jobs alone, so they are dispatched first). @defaultValue batchSize */
  firstBatchSize?: number
  /** How long job n runs after recording its start (ms): one figure, or one per submission index. @defaultValue 0 */
  jobMs?: number | ((n: number) => number)
  /** Stop submitting after this long even if not all were acknowledged. @defaultValue 120000 */
  submitTimeoutMs?: number
  /** Batches after the first wait for this (e.g. to submit the queue at a chosen moment of the fault). */
  restAfter?: Promise<unknown>
  /** Submission n goes alone, with `?wait=1` (its final then written by its worker). @defaultValue none */
  waited?: (n: number) => boolean
}

export interface Workload {
  readonly name: string
  /** Start lines, one per attempt that began. */
  readonly runsFile: string
  /** End lines, one per attempt that returned or was aborted (not for a process that died). */
  readonly endsFile: string
  /** ids[n]: the id the API acknowledged for submission n (undefined: never acknowledged). */
  readonly ids: (string | undefined)[]
  /** Acknowledged ids in acknowledgement order. */
  readonly acknowledged: string[]
  /** POSTed jobs, retries included. */
  submitted: number
  /** Resolves when every job was submitted (acknowledged or given up). */
  readonly done: Promise<void>
  /** The length (ms) of job n. */
  jobMs(n: number): number
}

/** Start submitting in the background; returns at once. */
export function startWorkload(cluster: TestCluster, opts: WorkloadOptions): Workload {
  const name = uniqueName('runs')
  const runsFile = join(tmpdir(), `${name}.txt`)
  const endsFile = join(tmpdir(), `${name}.ends.txt`)
  writeFileSync(runsFile, '')
  writeFileSync(endsFile, '')
  const spec = opts.jobMs ?? 0
  const jobMs = (n: number) => (typeof spec === 'number' ? spec : spec(n))
  const ids: (string | undefined)[] = []
  const acknowledged: string[] = []
  const w = { name, runsFile, endsFile, ids, acknowledged, submitted: 0, jobMs } as Omit<Workload, 'done'>
  const batchSize = opts.batchSize ?? 100
  const deadline = Date.now() + (opts.submitTimeoutMs ?? 120_000)
  const done = (async () => {
    for (let i = 0, size = opts.firstBatchSize ?? batchSize; i < opts.count && Date.now() < deadline; i += size) {
      if (i > 0) size = batchSize
      if (i > 0 && opts.restAfter) await opts.restAfter
      const jobs = Array.from({ length: Math.min(size, opts.count - i) }, (_, k) => ({
        function: 'start',
        payload: { file: runsFile, ends: endsFile, n: i + k, ms: jobMs(i + k) },
        maxAttempts: 3,
        timeoutMs: 300_000,
        idempotencyKey: `${name}-${i + k}`,
      }))
      // Each job is acknowledged through its batch or alone; retried until it is (or the deadline).
      let pending: Submission[] = jobs.map((job, k) => ({ job, n: i + k }))
      while (pending.length > 0 && Date.now() <= deadline) {
        w.submitted += pending.length
        const alone = pending.filter((p) => opts.waited?.(p.n))
        const together = pending.filter((p) => !opts.waited?.(p.n))
        const failed = await Promise.all([
          submitTogether(cluster, together, ids, acknowledged),
          ...alone.map((p) => submitAlone(cluster, p, ids, acknowledged)),
        ])
        pending = failed.flat()
        if (pending.length > 0) await new Promise((res) => setTimeout(res, 100))
      }
    }
  })()
  return Object.assign(w, { done })
}

interface Submission {
  job: Record<string, unknown>
  n: number
}

/** A 503, a 429 or no answer: submitted again; anything else unexpected throws. */
function retriable(status: number, body: unknown): boolean {
  if (status === 0 || status === 503 || status === 429) return true
  throw new Error(`unexpected status ${status}: ${JSON.stringify(body)}`)
}

/** POST /jobs/batch; resolves with the submissions to send again. */
async function submitTogether(c: TestCluster, subs: Submission[], ids: (string | undefined)[], acked: string[]) {
  if (subs.length === 0) return []
  const r = await c.post('/jobs/batch', { jobs: subs.map((s) => s.job) }).catch(() => ({ status: 0, body: undefined }))
  if (r.status !== 202) return retriable(r.status, r.body) ? subs : []
  const got = (r.body as { jobs: { id: string }[] }).jobs
  got.forEach((j, k) => (ids[subs[k]!.n] = j.id))
  acked.push(...got.map((j) => j.id))
  return []
}

/** POST /jobs?wait=1 (202 once stored, or 200 if it finished that soon); the submission if it must go again. */
async function submitAlone(c: TestCluster, sub: Submission, ids: (string | undefined)[], acked: string[]) {
  const r = await c.post('/jobs?wait=1', sub.job).catch(() => ({ status: 0, body: undefined }))
  if (r.status !== 202 && r.status !== 200) return retriable(r.status, r.body) ? [sub] : []
  const id = (r.body as { id: string }).id
  ids[sub.n] = id
  acked.push(id)
  return []
}

// ---- what the jobs recorded ---------------------------------------------------------------------------

/** One start line: `<jobId> <attempt> <pid> <epochMs> <n>`. */
export interface ExecutionLine {
  jobId: string
  attempt: number
  pid: number
  at: number
  /** Submission index the job was given (NaN when the line has none). */
  n: number
}

/** One end line: a start line's fields and `ok` or `aborted`. */
export interface EndLine extends ExecutionLine {
  outcome: string
}

function parseLines(file: string): string[][] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length >= 4 && f[0] !== '')
}

/** Every start line of a runs file, in file order. */
export function executionLines(runsFile: string): ExecutionLine[] {
  return parseLines(runsFile).map(([jobId, attempt, pid, at, n]) => ({
    jobId: jobId!,
    attempt: Number(attempt),
    pid: Number(pid),
    at: Number(at),
    n: Number(n),
  }))
}

/** Every end line of an ends file, in file order. */
export function endLines(endsFile: string): EndLine[] {
  return parseLines(endsFile).map(([jobId, attempt, pid, at, n, outcome]) => ({
    jobId: jobId!,
    attempt: Number(attempt),
    pid: Number(pid),
    at: Number(at),
    n: Number(n),
    outcome: outcome ?? '',
  }))
}

/** Start lines grouped by job id, each list in time order. */
export function startsByJob(runsFile: string): Map<string, ExecutionLine[]> {
  const byJob = new Map<string, ExecutionLine[]>()
  for (const l of executionLines(runsFile)) {
    let list = byJob.get(l.jobId)
    if (!list) byJob.set(l.jobId, (list = []))
    list.push(l)
  }
  for (const list of byJob.values()) list.sort((a, b) => a.at - b.at)
  return byJob
}

/** Executions recorded in [from, to] (epoch ms). */
export function executionsBetween(runsFile: string, from: number, to: number): ExecutionLine[] {
  return executionLines(runsFile).filter((l) => l.at >= from && l.at <= to)
}

/**
 * The longest pause between job starts after `faultAt` (epoch ms), counted from `faultAt`: the time
 * the cluster started no work because of the fault (meaningful for short jobs only).
 */
export function executionGapAfter(runsFile: string, faultAt: number): number | null {
  const times = executionLines(runsFile)
    .map((l) => l.at)
    .filter((t) => Number.isFinite(t) && t >= faultAt)
    .sort((a, b) => a - b)
  let prev = faultAt
  let gap: number | null = null
  for (const t of times) {
    gap = Math.max(gap ?? 0, t - prev)
    prev = t
  }
  return gap
}

// ---- the outcome ---------------------------------------------------------------------------------------

/** A final job as the API reports it. */
export interface JobView {
  id: string
  state: string
  attempts: number
  result?: unknown
  worker?: string
}

export interface Settled {
  /** Final jobs by id (an acknowledged job missing here never became final, or is unknown). */
  jobs: Map<string, JobView>
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled'])

/** Wait until every acknowledged job is final (or `timeoutMs`), reading each through GET /jobs/:id. */
export async function settleWorkload(cluster: TestCluster, w: Workload, timeoutMs = 120_000): Promise<Settled> {
  await w.done
  const deadline = Date.now() + timeoutMs
  const jobs = new Map<string, JobView>()
  let pending = [...w.acknowledged]
  while (pending.length > 0) {
    const still: string[] = []
    for (let i = 0; i < pending.length; i += 32) {
      const chunk = pending.slice(i, i + 32)
      const got = await Promise.all(chunk.map((id) => cluster.get(`/jobs/${id}`).catch(() => undefined)))
      got.forEach((r, k) => {
        const body = r?.body as JobView | undefined
        if (r?.status === 200 && body && FINAL.has(body.state)) jobs.set(chunk[k]!, body)
        else still.push(chunk[k]!)
      })
    }
    pending = still
    if (pending.length === 0 || Date.now() > deadline) break
    await new Promise((res) => setTimeout(res, 250))
  }
  return { jobs }
}

/**
 * Whether a job that started more than once is explained by the fault (a process that died or was cut
 * off): undefined when it is, else why not.
 */
export type Explain = (starts: ExecutionLine[], n: number) => string | undefined

export interface WorkloadVerdict {
  submitted: number
  acknowledged: number
  succeeded: number
  /** Acknowledged jobs that did not succeed (or never became final). */
  lost: string[]
  /** Succeeded jobs that never recorded a start: bosun reported work that did not run. */
  noStart: string[]
  /** Jobs whose result or start line does not belong to their submission (`{ done: id, n }`). */
  wrongResult: string[]
  /** Jobs that ran once (no fault explains more) yet report `attempts` ≠ 1 (a wrongly failed attempt). */
  wrongAttempts: string[]
  /** Jobs that started more than once, explained by the fault. */
  explained: string[]
  /** Jobs that started more than once without an explanation: guarantee 3 broken. */
  unexplained: string[]
  /** Start lines of jobs the API never acknowledged. */
  strays: number
}

/** Check every acknowledged job against its submission and its own start lines. */
export function verifyWorkload(w: Workload, settled: Settled, explain?: Explain): WorkloadVerdict {
  const starts = startsByJob(w.runsFile)
  const index = new Map<string, number>()
  w.ids.forEach((id, n) => id !== undefined && index.set(id, n))
  const v: WorkloadVerdict = {
    submitted: w.submitted,
    acknowledged: w.acknowledged.length,
    succeeded: 0,
    lost: [],
    noStart: [],
    wrongResult: [],
    wrongAttempts: [],
    explained: [],
    unexplained: [],
    strays: [...starts.keys()].filter((id) => !index.has(id)).length,
  }
  for (const id of new Set(w.acknowledged)) {
    const n = index.get(id)!
    const job = settled.jobs.get(id)
    const mine = starts.get(id) ?? []
    if (job?.state !== 'succeeded') v.lost.push(id)
    else v.succeeded++
    if (job?.state === 'succeeded') {
      if (mine.length === 0) v.noStart.push(id)
      const r = job.result as { done?: unknown; n?: unknown } | null | undefined
      if (r?.done !== id || r?.n !== n || mine.some((s) => s.n !== n)) v.wrongResult.push(id)
    }
    const ranOnce = mine.length <= 1
    if (!ranOnce) {
      const why = explain ? explain(mine, n) : 'no fault explains a second start'
      if (why === undefined) v.explained.push(id)
      else v.unexplained.push(`${id} (n ${n}): ${why}; starts ${mine.map((s) => `pid ${s.pid} at ${s.at}`).join(', ')}`)
    }
    if (ranOnce && job?.state === 'succeeded' && (job.attempts !== 1 || mine.some((s) => s.attempt !== 1))) {
      v.wrongAttempts.push(
        `${id}: attempts ${job.attempts}, started as attempt ${mine.map((s) => s.attempt).join(',')}`,
      )
    }
  }
  return v
}

/**
 * When a kill happened: from the moment SIGKILL was sent to the moment the test saw the process exit.
 * A loaded machine can deschedule the test between reading the clock and sending the signal, so the
 * victim may really start a job after `sentAt`; it cannot start one after `diedAt`.
 */
export interface KillWindow {
  readonly sentAt: number
  readonly diedAt: number
}

/**
 * Explains a job's repeated starts by killed workers: every start but the last was on a killed process,
 * began at most the job's length plus `slackMs` (result delivery and acknowledgement) before the kill
 * was sent — a job the victim had finished and delivered long before must not run again — and no later
 * than the victim's death.
 */
export function killedWorkerExplains(
  w: Workload,
  killedPids: ReadonlySet<number>,
  kill: KillWindow,
  slackMs: number,
): Explain {
  return (starts, n) => {
    for (const s of starts.slice(0, -1)) {
      if (!killedPids.has(s.pid)) return `an earlier start on pid ${s.pid}, which was not killed`
      if (kill.sentAt - s.at > w.jobMs(n) + slackMs)
        return `started ${kill.sentAt - s.at} ms before the kill (job ${w.jobMs(n)} ms)`
      if (s.at > kill.diedAt) return `started on pid ${s.pid} after it died`
    }
    return undefined
  }
}
