/**
 * Failover of the boss under a steady stream of `noop` jobs (~100/s, open loop, each submit retried
 * on 503 / network errors): the boss process gets SIGTERM (it resigns at once) or SIGKILL (its
 * ZooKeeper session must expire). Measured from the finished events:
 * - gap: the longest interval between consecutive completions from 1 s before the signal until the
 *   stream ends;
 * - signal → first completion published by another process (the new boss).
 * Afterwards the killed worker is replaced (TestCluster.addWorker) and the cluster is ready again.
 */
import { procSubject } from '../../runner/index.js'
import type { BenchCluster } from './cluster.js'

export interface FailoverResult {
  signal: 'SIGTERM' | 'SIGKILL'
  sessionTimeoutMs: number
  /** Longest interval without a completion around the fault (ms). */
  gapMs: number
  /** Signal → first completion published by the new boss (ms). */
  firstNewBossCompletionMs: number
  /** Submits answered 503 (no boss) or failed, then retried. */
  retries: number
  /** Longest submit (from its scheduled time to its 202, retries included) around the fault (ms). */
  maxSubmitMs: number
  jobs: number
  /** Jobs whose finished event never arrived (should be 0). */
  incomplete: number
  /** For each of those: its state in the store (GET /jobs/:id) — final means only the event was lost. */
  incompleteStates: Record<string, string>
  oldBoss: string
  newBoss: string
  /**
   * Completions per 100 ms bucket (non-empty ones) from 1 s before the signal (t = bucket start relative to the
   * signal, by publisher node id).
   */
  timeline: { t: number; by: Record<string, number> }[]
}

function buckets(line: { t: number; from: string }[], tSignal: number, until: number): FailoverResult['timeline'] {
  const out: FailoverResult['timeline'] = []
  for (let t = -1000; t < until; t += 100) out.push({ t, by: {} })
  for (const e of line) {
    const i = Math.floor((e.t - tSignal + 1000) / 100)
    const b = out[i]
    if (!b) continue
    const who = e.from.split('.').pop() ?? '?'
    b.by[who] = (b.by[who] ?? 0) + 1
  }
  return out
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function failover(
  c: BenchCluster,
  signal: FailoverResult['signal'],
  sessionTimeoutMs: number,
  ratePerSec = 100,
  steadyMs = 2000,
  afterMs = 2000,
): Promise<FailoverResult> {
  const boss = await c.cluster.bossProcess()
  const bossInfo = (await c.cluster.clusterState()).boss!
  const oldAddress = procSubject(c.name, bossInfo.id)
  const ids: string[] = []
  let retries = 0
  let maxSubmitMs = 0
  let streaming = true
  const inflight = new Set<Promise<void>>()
  const submit = async (due: number) => {
    for (let attempt = 0; attempt < 400; attempt++) {
      try {
        const res = await c.client.post<{ id: string }>('/jobs', { function: 'noop' }, 10_000)
        if (res.status === 202) {
          ids.push(res.body!.id)
          maxSubmitMs = Math.max(maxSubmitMs, performance.now() - due)
          return
        }
      } catch {
        /* connection trouble: retry */
      }
      retries++
      await sleep(50)
    }
  }
  const interval = 1000 / ratePerSec
  const stream = (async () => {
    const t0 = performance.now()
    for (let i = 0; streaming; i++) {
      const due = t0 + i * interval
      const wait = due - performance.now()
      if (wait > 1) await sleep(wait)
      const p = submit(due).finally(() => inflight.delete(p))
      inflight.add(p)
    }
  })()

  await sleep(steadyMs)
  const tSignal = performance.now()
  if (signal === 'SIGKILL') boss.child.kill('SIGKILL')
  else void boss.stop()
  // Wait for the first completion published by someone else (the new boss).
  const deadline = tSignal + 4 * sessionTimeoutMs + 30_000
  let first: number | undefined
  while (first === undefined) {
    if (performance.now() > deadline) break
    await sleep(10)
    for (const e of c.events.done.values()) {
      if (e.t >= tSignal && e.from !== oldAddress && (first === undefined || e.t < first)) first = e.t
    }
  }
  await sleep(afterMs)
  streaming = false
  await stream
  await Promise.all([...inflight])
  const incompleteStates: Record<string, string> = {}
  try {
    await c.events.waitAll(ids, 60_000)
  } catch {
    for (const id of ids.filter((x) => !c.events.done.has(x))) {
      const r = await c.cluster.get(`/jobs/${id}`).catch(() => undefined)
      const state = (r?.body as { state?: unknown } | undefined)?.state
      incompleteStates[id] = r?.status === 200 ? String(state) : `HTTP ${r?.status ?? 'error'}`
    }
  }
  const incomplete = Object.keys(incompleteStates).length
  const line = c.events.timeline(ids).filter((e) => e.t >= tSignal - 1000)
  let gap = 0
  for (let i = 1; i < line.length; i++) gap = Math.max(gap, line[i]!.t - line[i - 1]!.t)
  const newBoss = line.find((e) => e.from !== oldAddress)?.from ?? ''
  await boss.exited
  // Back to full strength for the next measurement.
  c.cluster.addWorker()
  await c.cluster.waitReady(c.cluster.workers.filter((w) => w.running).length - 1, 180_000)
  return {
    signal,
    sessionTimeoutMs,
    gapMs: Math.round(gap),
    firstNewBossCompletionMs: first === undefined ? Number.NaN : Math.round(first - tSignal),
    retries,
    maxSubmitMs: Math.round(maxSubmitMs),
    jobs: ids.length,
    incomplete,
    incompleteStates,
    oldBoss: bossInfo.id,
    newBoss: newBoss.split('.').pop() ?? '',
    timeline: buckets(line, tSignal, Math.min(30_000, (line.at(-1)?.t ?? tSignal) - tSignal + 100)).filter(
      (b) => Object.keys(b.by).length > 0,
    ),
  }
}
