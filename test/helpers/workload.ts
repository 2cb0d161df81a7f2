/**
 * A measured workload for fault tests: submits `count` jobs through the API (batches, retrying
 * 503/429 and connection errors, so only acknowledged jobs are counted), waits until every
 * acknowledged job is final, and reports submitted / acknowledged / succeeded / lost / run twice
 * from the API and from the execution log of the `count` test function.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { ROOT, type TestCluster } from './processes.js'
import { uniqueName } from './servers.js'

export interface WorkloadOptions {
  count: number
  /** Jobs per POST /jobs/batch. */
  batchSize?: number
  /** Sleep in the job (ms) so jobs are in flight when the fault hits. */
  jobMs?: number
  /** Stop submitting after this long even if not all were acknowledged. */
  submitTimeoutMs?: number
}

export interface Workload {
  readonly runsFile: string
  readonly acknowledged: string[]
  submitted: number
  /** Resolves when every job was submitted (acknowledged or given up). */
  readonly done: Promise<void>
}

const FINAL = new Set(['succeeded', 'failed', 'cancelled'])

/** Start submitting in the background; returns at once. */
export function startWorkload(cluster: TestCluster, opts: WorkloadOptions): Workload {
  const runsFile = join(tmpdir(), `${uniqueName('runs')}.txt`)
  writeFileSync(runsFile, '')
  const w: Workload = { runsFile, acknowledged: [], submitted: 0, done: Promise.resolve() }
  const batchSize = opts.batchSize ?? 100
  const deadline = Date.now() + (opts.submitTimeoutMs ?? 120_000)
  ;(w as { done: Promise<void> }).done = (async () => {
    for (let i = 0; i < opts.count && Date.now() < deadline; i += batchSize) {
      const jobs = Array.from({ length: Math.min(batchSize, opts.count - i) }, (_, k) => ({ function: 'count', payload: { file: runsFile, n: i + k, ms: opts.jobMs ?? 0 }, maxAttempts: 3 }))
      w.submitted += jobs.length
      for (;;) {
        if (Date.now() > deadline) break
        const r = await cluster.post('/jobs/batch', { jobs }).catch(() => ({ status: 0, body: undefined }))
        if (r.status === 202) {
          w.acknowledged.push(...(r.body.jobs as { id: string }[]).map((j) => j.id))
          break
        }
        if (r.status !== 0 && r.status !== 503 && r.status !== 429) throw new Error(`unexpected status ${r.status}: ${JSON.stringify(r.body)}`)
        await new Promise((res) => setTimeout(res, 100))
      }
    }
  })()
  return w
}

export interface WorkloadResult {
  submitted: number
  acknowledged: number
  succeeded: number
  /** Acknowledged jobs that did not reach `succeeded` by the deadline (or are unknown). */
  lost: number
  /** Jobs that ran more than once. */
  ranTwice: number
  executions: number
}

/** Executions per job id from the count function's log. */
export function executions(runsFile: string): Map<string, number> {
  const counts = new Map<string, number>()
  for (const line of readFileSync(runsFile, 'utf8').split('\n')) {
    const id = line.split(' ')[0]
    if (id) counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}

/** Wait until every acknowledged job is final (or timeoutMs), then count. */
export async function settleWorkload(cluster: TestCluster, w: Workload, timeoutMs = 120_000): Promise<WorkloadResult> {
  await w.done
  const deadline = Date.now() + timeoutMs
  const states = new Map<string, string>()
  let pending = [...w.acknowledged]
  while (pending.length > 0 && Date.now() < deadline) {
    const still: string[] = []
    for (let i = 0; i < pending.length; i += 32) {
      const chunk = pending.slice(i, i + 32)
      const got = await Promise.all(chunk.map((id) => cluster.get(`/jobs/${id}`).catch(() => ({ status: 0, body: undefined }))))
      got.forEach((r, k) => {
        const id = chunk[k]!
        if (r.status === 200 && FINAL.has(r.body.state)) states.set(id, r.body.state)
        else still.push(id)
      })
    }
    pending = still
    if (pending.length > 0) await new Promise((res) => setTimeout(res, 250))
  }
  const runs = executions(w.runsFile)
  let succeeded = 0
  for (const s of states.values()) if (s === 'succeeded') succeeded++
  return {
    submitted: w.submitted,
    acknowledged: w.acknowledged.length,
    succeeded,
    lost: w.acknowledged.length - succeeded,
    ranTwice: [...runs.values()].filter((n) => n > 1).length,
    executions: [...runs.values()].reduce((a, b) => a + b, 0),
  }
}

export interface FaultRow extends WorkloadResult {
  fault: string
  run: number
  /** ms from the fault until the cluster completed jobs again (or until a new boss dispatched). */
  failoverGapMs: number | null
  notes?: string
}

/** Append one row to the fault report (README's fault table is rendered from it). */
export function recordFault(row: FaultRow): void {
  const file = process.env.BOSUN_FAULT_REPORT ?? join(ROOT, '.bosun', 'fault-report.jsonl')
  mkdirSync(dirname(file), { recursive: true })
  appendFileSync(file, JSON.stringify({ ...row, at: new Date().toISOString() }) + '\n')
}

/**
 * The longest pause in executions after `faultAt` (epoch ms): the time the cluster did no work
 * because of the fault. Execution lines are `<jobId> <attempt> <pid> <epochMs>`.
 */
export function executionGapAfter(runsFile: string, faultAt: number): number | null {
  const times = readFileSync(runsFile, 'utf8')
    .split('\n')
    .map((l) => Number(l.split(' ')[3]))
    .filter((t) => Number.isFinite(t) && t > 0)
    .sort((a, b) => a - b)
  let prev = faultAt
  let gap: number | null = null
  for (const t of times) {
    if (t < faultAt) continue
    gap = Math.max(gap ?? 0, t - prev)
    prev = t
  }
  return gap
}
