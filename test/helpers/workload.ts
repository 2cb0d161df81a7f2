/**
 * A measured workload for fault tests: submits `count` jobs through the API (batches, retrying
 * 503/429 and connection errors, so only acknowledged jobs are counted; every job carries an
 * idempotency key, as a careful client's would, so a retried batch whose 202 was lost in the fault
 * names the jobs already stored instead of adding copies), waits until every
 * acknowledged job is final, and reports submitted / acknowledged / succeeded / lost / run twice
 * from the API and from the execution log of the `count` test function.
 */
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { ROOT, type TestCluster } from './processes.js'
import { fourLetterWord, uniqueName, type NatsHandle, type NatsServer, type ZkHandle, type ZkServer } from './servers.js'

export interface WorkloadOptions {
  count: number
  /** Jobs per POST /jobs/batch. */
  batchSize?: number
  /** Sleep in the job (ms) so jobs are in flight when the fault hits. */
  jobMs?: number
  /** Stop submitting after this long even if not all were acknowledged. */
  submitTimeoutMs?: number
  /** Test function to run: `count` records each execution at its end, `start` at its start. @defaultValue 'count' */
  fn?: 'count' | 'start'
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
  const name = uniqueName('runs')
  const runsFile = join(tmpdir(), `${name}.txt`)
  writeFileSync(runsFile, '')
  const w: Workload = { runsFile, acknowledged: [], submitted: 0, done: Promise.resolve() }
  const batchSize = opts.batchSize ?? 100
  const deadline = Date.now() + (opts.submitTimeoutMs ?? 120_000)
  ;(w as { done: Promise<void> }).done = (async () => {
    for (let i = 0; i < opts.count && Date.now() < deadline; i += batchSize) {
      const jobs = Array.from({ length: Math.min(batchSize, opts.count - i) }, (_, k) => ({ function: opts.fn ?? 'count', payload: { file: runsFile, n: i + k, ms: opts.jobMs ?? 0 }, maxAttempts: 3, idempotencyKey: `${name}-${i + k}` }))
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

// ---- attribution helpers for the worker / NATS / ZooKeeper fault suites ------------------------

/** One line of a runs file: `<jobId> <attempt> <pid> <epochMs>` (with `fn: 'start'`, one per execution start). */
export interface ExecutionLine {
  jobId: string
  attempt: number
  pid: number
  at: number
}

/** Every well-formed line of a runs file, in file order. */
export function executionLines(runsFile: string): ExecutionLine[] {
  const out: ExecutionLine[] = []
  for (const line of readFileSync(runsFile, 'utf8').split('\n')) {
    const [jobId, attempt, pid, at] = line.split(' ')
    if (!jobId || at === undefined) continue
    out.push({ jobId, attempt: Number(attempt), pid: Number(pid), at: Number(at) })
  }
  return out
}

/** Executions recorded in [from, to] (epoch ms). */
export function executionsBetween(runsFile: string, from: number, to: number): ExecutionLine[] {
  return executionLines(runsFile).filter((l) => l.at >= from && l.at <= to)
}

export interface DuplicateReport {
  /** Jobs that started more than once. */
  duplicates: number
  /** Jobs that started again although an earlier start was on a process that stayed alive (guarantee 3 broken). */
  unexplained: { jobId: string; pids: number[] }[]
  /** Per job re-run after the kill: ms from the kill to its next start on another process. */
  rerunDelaysMs: number[]
}

/**
 * Attribute repeated starts (runs file of the `start` function) to killed processes: a job may start
 * again only if every start but its last was on a process in `killedPids`. `killedAt` is when the
 * kill was sent, for the re-run delays.
 */
export function attributeDuplicates(runsFile: string, killedPids: ReadonlySet<number>, killedAt: number): DuplicateReport {
  const byJob = new Map<string, ExecutionLine[]>()
  for (const l of executionLines(runsFile)) {
    let list = byJob.get(l.jobId)
    if (!list) byJob.set(l.jobId, (list = []))
    list.push(l)
  }
  const report: DuplicateReport = { duplicates: 0, unexplained: [], rerunDelaysMs: [] }
  for (const [jobId, starts] of byJob) {
    if (starts.length < 2) continue
    report.duplicates++
    starts.sort((a, b) => a.at - b.at)
    const earlier = starts.slice(0, -1)
    if (earlier.some((s) => !killedPids.has(s.pid))) {
      report.unexplained.push({ jobId, pids: starts.map((s) => s.pid) })
      continue
    }
    const rerun = starts.find((s) => !killedPids.has(s.pid) && s.at >= killedAt)
    if (rerun) report.rerunDelaysMs.push(rerun.at - killedAt)
  }
  return report
}

/** The ensemble member that says `Mode: leader` to `srvr` (undefined while there is none). */
export async function zkLeaderMember(zk: ZkHandle): Promise<ZkServer | undefined> {
  for (const s of zk.servers) {
    if (!s.running) continue
    if (/^Mode: leader/m.test(await fourLetterWord(s.port, 'srvr', 500))) return s
  }
  return undefined
}

/** The server of a NATS cluster that leads JetStream stream `stream` (from /jsz and /varz). */
export async function natsStreamLeader(nats: NatsHandle, stream: string): Promise<NatsServer | undefined> {
  interface Jsz { account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[] }
  let leader: string | undefined
  const names = new Map<string, NatsServer>()
  for (const s of nats.servers) {
    if (!s.running) continue
    const base = `http://127.0.0.1:${s.monitorPort}`
    const varz = (await fetch(`${base}/varz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.json()).catch(() => undefined)) as { server_name?: string } | undefined
    if (varz?.server_name) names.set(varz.server_name, s)
    const jsz = (await fetch(`${base}/jsz?accounts=true&streams=true`, { signal: AbortSignal.timeout(1000) }).then((r) => r.json()).catch(() => undefined)) as Jsz | undefined
    for (const acc of jsz?.account_details ?? []) for (const d of acc.stream_detail ?? []) if (d.name === stream && d.cluster?.leader) leader = d.cluster.leader
  }
  return leader === undefined ? undefined : names.get(leader)
}

/** True when the leader of JetStream stream `stream` reports every replica current (caught up). */
export async function natsStreamCurrent(nats: NatsHandle, stream: string): Promise<boolean> {
  interface Jsz { account_details?: { stream_detail?: { name: string; cluster?: { leader?: string; replicas?: { current?: boolean }[] } }[] }[] }
  for (const s of nats.servers) {
    if (!s.running) continue
    const base = `http://127.0.0.1:${s.monitorPort}`
    const varz = (await fetch(`${base}/varz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.json()).catch(() => undefined)) as { server_name?: string } | undefined
    const jsz = (await fetch(`${base}/jsz?accounts=true&streams=true`, { signal: AbortSignal.timeout(1000) }).then((r) => r.json()).catch(() => undefined)) as Jsz | undefined
    for (const acc of jsz?.account_details ?? []) {
      for (const d of acc.stream_detail ?? []) {
        if (d.name !== stream || d.cluster?.leader === undefined || d.cluster.leader !== varz?.server_name) continue
        return (d.cluster.replicas ?? []).length > 0 && (d.cluster.replicas ?? []).every((r) => r.current === true)
      }
    }
  }
  return false
}

// ---- boss actions as seen on the wire (fencing proofs of the boss / API fault suites) -----------

/** One attempted write of a job record, seen on the KV bucket's subject (before the store decides). */
export interface StoreWriteSeen {
  /** Arrival order among everything this log saw. */
  n: number
  at: number
  /** Job id (the key without `jobs.`). */
  id: string
  /** `epoch` of the record written (0: the API at submit). */
  epoch: number | undefined
  state: string | undefined
  /** Stream sequence when JetStream stored it (undefined: refused or no answer seen). */
  storedSeq?: number
  /** JetStream's refusal (e.g. wrong last sequence: the compare-and-set lost). */
  refused?: string
}

/** One message a boss sent to a process (`bosun.<cluster>.proc.<id>`) carrying an epoch. */
export interface BossMessageSeen {
  n: number
  at: number
  type: string
  from: string
  to: string
  epoch: number
  /** Jobs in a dispatch. */
  jobs: number
  /** Dispatches only: jobs the worker accepted / refused, from its reply (undefined: no reply seen). */
  accepted?: number
  refused?: number
  refusal?: string
}

/** What `overlap()` found: actions of the old boss that took effect after the new boss began. */
export interface OverlapReport {
  oldEpoch: number
  newEpoch: number
  /** Stream sequence of the first stored write of `newEpoch` (undefined: the new boss wrote nothing). */
  firstNewSeq: number | undefined
  /** Arrival number of the new boss's first message or write. */
  firstNewN: number | undefined
  /** Old-epoch writes JetStream stored after the new epoch's first stored write: guarantee 1 broken. */
  lateOldWrites: StoreWriteSeen[]
  /** Old-epoch write attempts after the new boss began that the store refused (fencing at work). */
  refusedOldWrites: number
  /** Old-epoch dispatches after the new boss began that a worker accepted: guarantee 1 broken. */
  lateOldDispatches: BossMessageSeen[]
  /** Old-epoch messages after the new boss began (refused or not answered). */
  lateOldMessages: number
  newWrites: number
  newMessages: number
}

export interface BossActionLog {
  readonly writes: StoreWriteSeen[]
  readonly messages: BossMessageSeen[]
  /** Fencing check between the boss of `oldEpoch` and the boss of `newEpoch`. */
  overlap(oldEpoch: number, newEpoch: number): OverlapReport
  /** One line for notes / t.comment. */
  summary(r: OverlapReport): string
  stop(): Promise<void>
}

/**
 * Record, from a NATS connection of the test, every job-record write (subject
 * `$KV.bosun_<cluster>_jobs.jobs.>`, with JetStream's ack or refusal read from the reply inbox) and
 * every epoch-carrying message to a process (`bosun.<cluster>.proc.>`, with dispatch replies), in
 * arrival order. Core NATS fan-out gives the test a copy without changing what the processes see.
 */
export async function watchBossActions(natsUrl: string, cluster: string): Promise<BossActionLog> {
  const { connect } = await import('@nats-io/transport-node')
  const nc = await connect({ servers: natsUrl.split(','), name: 'fault-test-observer', maxReconnectAttempts: -1, reconnectTimeWait: 250 })
  const writes: StoreWriteSeen[] = []
  const messages: BossMessageSeen[] = []
  const pending = new Map<string, StoreWriteSeen | BossMessageSeen>()
  const early = new Map<string, Uint8Array>()
  let n = 0
  const text = new TextDecoder()
  const json = (data: Uint8Array): any => {
    try {
      return JSON.parse(text.decode(data))
    } catch {
      return undefined
    }
  }
  const applyReply = (rec: StoreWriteSeen | BossMessageSeen, data: Uint8Array) => {
    const r = json(data)
    if ('id' in rec) {
      if (typeof r?.seq === 'number' && !r.error) rec.storedSeq = r.seq
      else rec.refused = String(r?.error?.description ?? r?.error?.err_code ?? 'refused')
      return
    }
    if (r?.ok === true && Array.isArray(r.body?.answers)) {
      const accepted: number = r.body.answers.filter((a: { accepted?: boolean }) => a?.accepted === true).length
      rec.accepted = accepted
      rec.refused = r.body.answers.length - accepted
      const reasons = new Set(r.body.answers.filter((a: { accepted?: boolean }) => !a?.accepted).map((a: { reason?: string }) => a.reason))
      if (reasons.size > 0) rec.refusal = [...reasons].join(',')
    } else if (r?.ok === false) {
      rec.accepted = 0
      rec.refused = rec.jobs
      rec.refusal = String(r.error?.code ?? 'error')
    }
  }
  const track = (reply: string | undefined, rec: StoreWriteSeen | BossMessageSeen) => {
    if (!reply) return
    const got = early.get(reply)
    if (got) {
      early.delete(reply)
      applyReply(rec, got)
    } else pending.set(reply, rec)
  }
  const kvPrefix = `$KV.bosun_${cluster}_jobs.jobs.`
  nc.subscribe(`${kvPrefix}>`, {
    callback: (err, msg) => {
      if (err) return
      const job = json(msg.data)
      const rec: StoreWriteSeen = { n: n++, at: Date.now(), id: msg.subject.slice(kvPrefix.length), epoch: typeof job?.epoch === 'number' ? job.epoch : undefined, state: job?.state }
      writes.push(rec)
      track(msg.reply, rec)
    },
  })
  nc.subscribe(`bosun.${cluster}.proc.>`, {
    callback: (err, msg) => {
      if (err) return
      const env = json(msg.data)
      if (typeof env?.epoch !== 'number') return
      const rec: BossMessageSeen = {
        n: n++,
        at: Date.now(),
        type: String(env.type),
        from: String(env.from),
        to: msg.subject.split('.').pop() ?? '',
        epoch: env.epoch,
        jobs: Array.isArray(env.body?.jobs) ? env.body.jobs.length : 0,
      }
      messages.push(rec)
      if (rec.type === 'worker.dispatch') track(msg.reply, rec)
    },
  })
  nc.subscribe('_INBOX.>', {
    callback: (err, msg) => {
      if (err) return
      const rec = pending.get(msg.subject)
      if (rec) {
        pending.delete(msg.subject)
        applyReply(rec, msg.data)
      } else if (early.size < 10_000) early.set(msg.subject, msg.data)
    },
  })
  await nc.flush()
  const stopped = { done: false }
  return {
    writes,
    messages,
    overlap(oldEpoch, newEpoch) {
      const newStored = writes.filter((w) => w.epoch === newEpoch && w.storedSeq !== undefined).map((w) => w.storedSeq!)
      const firstNewSeq = newStored.length > 0 ? Math.min(...newStored) : undefined
      const firstNew = [...writes, ...messages].filter((x) => x.epoch === newEpoch).map((x) => x.n)
      const firstNewN = firstNew.length > 0 ? Math.min(...firstNew) : undefined
      const after = (x: { n: number }) => firstNewN !== undefined && x.n > firstNewN
      const oldWrites = writes.filter((w) => w.epoch === oldEpoch)
      const oldMessages = messages.filter((m) => m.epoch === oldEpoch && after(m))
      return {
        oldEpoch,
        newEpoch,
        firstNewSeq,
        firstNewN,
        lateOldWrites: oldWrites.filter((w) => firstNewSeq !== undefined && w.storedSeq !== undefined && w.storedSeq > firstNewSeq),
        refusedOldWrites: oldWrites.filter((w) => after(w) && w.storedSeq === undefined).length,
        lateOldDispatches: oldMessages.filter((m) => m.type === 'worker.dispatch' && (m.accepted ?? 0) > 0),
        lateOldMessages: oldMessages.length,
        newWrites: writes.filter((w) => w.epoch === newEpoch).length,
        newMessages: messages.filter((m) => m.epoch === newEpoch).length,
      }
    },
    summary(r) {
      return `epoch ${r.oldEpoch}→${r.newEpoch}: new boss ${r.newWrites} writes/${r.newMessages} msgs; old boss after it: ${r.lateOldWrites.length} stored writes, ${r.refusedOldWrites} refused writes, ${r.lateOldDispatches.length} accepted dispatches, ${r.lateOldMessages} msgs`
    },
    async stop() {
      if (stopped.done) return
      stopped.done = true
      await nc.close().catch(() => undefined)
    },
  }
}

/** A parsed pino line of a bosun process (`time` is epoch ms). */
export type LogEntry = Record<string, unknown> & { time: number; msg: string }

/** Log lines of `proc` whose `msg` matches `pattern`, logged at or after `since` (epoch ms). */
export function logEntries(proc: import('./processes.js').BosunProcess, pattern: RegExp, since = 0): LogEntry[] {
  return proc
    .logLines()
    .filter((l): l is LogEntry => typeof l.msg === 'string' && typeof l.time === 'number' && l.time >= since && pattern.test(l.msg))
}

/**
 * `cluster.start()` with a patient readiness wait: on a loaded 2-core machine processes can take
 * longer than start()'s 30 s to connect. Resolves when the API is ready, a boss is elected and
 * `minWorkers` workers accept jobs.
 */
export async function startClusterPatiently(cluster: TestCluster, minWorkers: number, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now()
  await cluster.start().catch(() => undefined)
  // A process that exits while starting fails the start at once, with its last log lines.
  let started = false
  const died = new Promise<never>((_, reject) => {
    for (const p of [cluster.api, ...cluster.workers].filter(Boolean)) {
      void p.exited.then(() => {
        if (started) return
        const tail = p.logs().trim().split('\n').slice(-3).join('\n')
        reject(new Error(`${p.name} (pid ${p.pid}) exited with ${p.child.exitCode ?? p.child.signalCode} while the cluster started:\n${tail}`))
      })
    }
  })
  died.catch(() => undefined)
  try {
    await Promise.race([cluster.waitReady(minWorkers, Math.max(1000, timeoutMs - (Date.now() - t0))), died])
  } finally {
    started = true
  }
}

/**
 * `cluster.start()` with a longer readiness budget: on a loaded machine processes can take more than
 * start()'s 30 s to come up; the processes keep starting, so wait for them instead of failing.
 */
export async function startCluster(cluster: TestCluster, timeoutMs = 120_000, minWorkers?: number): Promise<void> {
  const t0 = Date.now()
  try {
    await cluster.start()
  } catch (err) {
    if (!cluster.api || !/cluster ready/.test((err as Error).message)) throw err
    await cluster.waitReady(minWorkers, Math.max(1000, timeoutMs - (Date.now() - t0)))
  }
}
/** Wait until GET /cluster names a boss other than `oldBossId`; returns that state. */
export async function waitForNewBoss(cluster: TestCluster, oldBossId: string, timeoutMs = 30_000): Promise<import('./processes.js').ClusterState & { boss: NonNullable<import('./processes.js').ClusterState['boss']> }> {
  const { waitFor } = await import('./wait.js')
  return waitFor(async () => {
    const s = await cluster.clusterState().catch(() => undefined)
    return s?.boss && s.boss.id !== oldBossId ? (s as typeof s & { boss: NonNullable<typeof s.boss> }) : undefined
  }, { timeoutMs, intervalMs: 50, what: `a boss other than ${oldBossId}` })
}

/** Wait for the first log line of `proc` matching `pattern` at or after `since` (epoch ms). */
export async function waitForLog(proc: import('./processes.js').BosunProcess, pattern: RegExp, since = 0, timeoutMs = 30_000): Promise<LogEntry> {
  const { waitFor } = await import('./wait.js')
  return waitFor(() => logEntries(proc, pattern, since)[0], { timeoutMs, intervalMs: 50, what: `${proc.name} to log ${pattern}` })
}
// ---- end of boss/api fault helpers
