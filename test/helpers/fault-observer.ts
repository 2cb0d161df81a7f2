/**
 * What the boss does, as seen on the wire by a NATS connection of the test (core NATS fan-out gives
 * the test a copy without changing what the processes see), in arrival order:
 * - every store write of the boss (and every final record a worker writes itself) with JetStream's
 *   answer (stored at a sequence, or refused) read from the reply inbox or the acknowledgement
 *   subject: a batch's state record (`bosun.<cluster>.state.<batch>`, fenced by epoch: recorded as id
 *   `state:<batch>`) and a job's final record (`bosun.<cluster>.done.<id>`, written
 *   once: recorded as the job id, `final: true`; a group of them, `bosun.<cluster>.done.g.<batch>`,
 *   as one such record per final with the group's epoch and answer);
 * - every epoch-carrying message to a process (`bosun.<cluster>.proc.<id>`: dispatch, inventory,
 *   abort) with the worker's answer (accepted, or refused);
 * - every batch of results a worker sent the boss, with the ids the boss acknowledged.
 * fence-checks.ts judges these records (fencing at every change of epoch, acknowledgement order).
 */
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node'
import { jobIdOf } from '../../jobs/streams/layout.js'
import { decodeGroup } from '../../jobs/streams/final-groups.js'

/** One attempted write of a job record (before the store decides). */
export interface StoreWriteSeen {
  /** Arrival order among everything this observer saw. */
  n: number
  at: number
  /** Job id (a final record) or `state:<batch>` (a batch's state record). */
  id: string
  /** A final record (written once) rather than a fenced state record. */
  final?: boolean
  /** The subject written (a group's for each of its finals) and where the answer goes. */
  subject?: string
  reply?: string
  /** `epoch` of the record written (0: the API at submit). */
  epoch: number | undefined
  state: string | undefined
  /** Ids of the jobs a batch's state record says are running (a state record only). */
  running?: string[]
  /** Stream sequence JetStream stored it at (undefined: refused or no answer seen). */
  storedSeq?: number
  /** Arrival number of JetStream's answer. */
  answeredN?: number
  /** JetStream's refusal (e.g. wrong last sequence: the compare-and-set lost). */
  refused?: string
}

/** The ids of the jobs a batch state record lists as running (garbage: none). */
function runningIn(record: Record<string, unknown> | undefined, batch: string): string[] {
  const jobs = record?.jobs
  if (typeof jobs !== 'object' || jobs === null) return []
  return Object.entries(jobs as Record<string, { state?: unknown }>)
    .filter(([, j]) => j?.state === 'running')
    .map(([index]) => jobIdOf(batch, Number(index)))
}

/** One message a boss sent to a process carrying an epoch. */
export interface BossMessageSeen {
  n: number
  at: number
  type: string
  from: string
  /** Node id of the addressee. */
  to: string
  epoch: number
  /** Jobs in a dispatch. */
  jobs: number
  /** Arrival number of the answer (dispatch, inventory; undefined: none seen). */
  answeredN?: number
  /** Dispatch: jobs accepted / refused by the worker. Inventory: 1 / 0 answered, 0 / 1 refused. */
  accepted?: number
  refused?: number
  refusal?: string
}

/** One batch of results a worker sent to the boss, and what the boss acknowledged. */
export interface ResultsSeen {
  n: number
  at: number
  /** Node id of the boss it was sent to. */
  to: string
  jobIds: string[]
  /** Arrival number of the boss's answer (undefined: none seen). */
  answeredN?: number
  acked?: string[]
}

export interface WireLog {
  readonly writes: StoreWriteSeen[]
  readonly messages: BossMessageSeen[]
  readonly results: ResultsSeen[]
  /** Arrival number the next record will get (a point in the observer's order). */
  now(): number
  stop(): Promise<void>
}

type Pending =
  | { kind: 'write'; rec: StoreWriteSeen }
  | { kind: 'msg'; rec: BossMessageSeen }
  | { kind: 'results'; rec: ResultsSeen }
  /** A group of final records (jobs/streams/final-groups.ts): one write seen per final, one answer for all. */
  | { kind: 'group'; recs: StoreWriteSeen[] }

const text = new TextDecoder()
function json(data: Uint8Array): any {
  try {
    return JSON.parse(text.decode(data))
  } catch {
    return undefined
  }
}

function applyReply(p: Pending, data: Uint8Array, n: number): void {
  if (p.kind === 'group') {
    for (const rec of p.recs) applyReply({ kind: 'write', rec }, data, n)
    return
  }
  const r = json(data)
  p.rec.answeredN = n
  if (p.kind === 'write') {
    if (typeof r?.seq === 'number' && !r.error) p.rec.storedSeq = r.seq
    else p.rec.refused = String(r?.error?.description ?? r?.error?.err_code ?? 'refused')
    return
  }
  if (p.kind === 'results') {
    p.rec.acked = r?.ok === true && Array.isArray(r.body?.acked) ? r.body.acked.map(String) : []
    return
  }
  const rec = p.rec
  if (r?.ok === false) {
    rec.accepted = 0
    rec.refused = Math.max(1, rec.jobs)
    rec.refusal = String(r.error?.details?.code ?? r.error?.code ?? 'error')
  } else if (r?.ok === true && Array.isArray(r.body?.answers)) {
    const answers = r.body.answers as { accepted?: boolean; reason?: string }[]
    rec.accepted = answers.filter((a) => a?.accepted === true).length
    rec.refused = answers.length - rec.accepted
    const reasons = new Set(answers.filter((a) => !a?.accepted).map((a) => a.reason))
    if (reasons.size > 0) rec.refusal = [...reasons].join(',')
  } else if (r?.ok === true) {
    rec.accepted = 1
    rec.refused = 0
  }
}

/** Start observing cluster `cluster` on `natsUrl` (comma-separated servers). */
export async function watchWire(natsUrl: string, cluster: string): Promise<WireLog> {
  const nc: NatsConnection = await connect({
    servers: natsUrl.split(','),
    name: 'fault-test-observer',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  })
  const writes: StoreWriteSeen[] = []
  const messages: BossMessageSeen[] = []
  const results: ResultsSeen[] = []
  const pending = new Map<string, Pending>()
  const early = new Map<string, { data: Uint8Array; n: number }>()
  let n = 0
  const track = (reply: string | undefined, p: Pending) => {
    if (!reply) return
    const got = early.get(reply)
    if (got) {
      early.delete(reply)
      applyReply(p, got.data, got.n)
    } else pending.set(reply, p)
  }
  const statePrefix = `bosun.${cluster}.state.`
  const donePrefix = `bosun.${cluster}.done.`
  const sub = (subject: string, cb: (msg: Msg) => void) =>
    nc.subscribe(subject, { callback: (err, msg) => (err ? undefined : cb(msg)) })
  const group = (msg: Msg) => {
    // `<prefix>g.<batch>.<part>`; a group the store would not read (garbage) counts as no final.
    const [batch = '', part = ''] = msg.subject.slice(`${donePrefix}g.`.length).split('.')
    const record = decodeGroup(msg.data, batch, Number(part))
    const finals: any[] = record?.finals ?? []
    const recs = finals.map((f): StoreWriteSeen => ({
      n: n++,
      at: Date.now(),
      id: String(f?.id),
      final: true,
      subject: msg.subject,
      ...(msg.reply ? { reply: msg.reply } : {}),
      epoch: typeof record?.epoch === 'number' ? record.epoch : undefined,
      state: f?.state,
    }))
    writes.push(...recs)
    track(msg.reply, { kind: 'group', recs })
  }
  const write = (msg: Msg, final: boolean) => {
    if (final && msg.subject.startsWith(`${donePrefix}g.`)) return group(msg)
    const record = json(msg.data)
    const epoch = typeof record?.epoch === 'number' ? record.epoch : undefined
    const rec: StoreWriteSeen = {
      n: n++,
      at: Date.now(),
      id: final ? msg.subject.slice(donePrefix.length) : `state:${msg.subject.slice(statePrefix.length)}`,
      final,
      subject: msg.subject,
      ...(msg.reply ? { reply: msg.reply } : {}),
      epoch,
      state: final ? record?.state : 'batch',
      running: final ? undefined : runningIn(record, msg.subject.slice(statePrefix.length)),
    }
    writes.push(rec)
    track(msg.reply, { kind: 'write', rec })
  }
  sub(`${statePrefix}>`, (msg) => write(msg, false))
  sub(`${donePrefix}>`, (msg) => write(msg, true))
  sub(`bosun.${cluster}.proc.>`, (msg) => {
    const env = json(msg.data)
    const to = msg.subject.split('.').pop() ?? ''
    if (env?.type === 'boss.results') {
      const list = Array.isArray(env.body?.results) ? (env.body.results as { jobId?: unknown }[]) : []
      const rec: ResultsSeen = { n: n++, at: Date.now(), to, jobIds: list.map((r) => String(r?.jobId)) }
      results.push(rec)
      track(msg.reply, { kind: 'results', rec })
      return
    }
    if (typeof env?.epoch !== 'number') return
    const jobs = Array.isArray(env.body?.jobs) ? env.body.jobs.length : 0
    const rec: BossMessageSeen = {
      n: n++,
      at: Date.now(),
      type: String(env.type),
      from: String(env.from),
      to,
      epoch: env.epoch,
      jobs,
    }
    messages.push(rec)
    track(msg.reply, { kind: 'msg', rec })
  })
  const reply = (msg: Msg) => {
    const p = pending.get(msg.subject)
    const at = n++
    if (p) {
      pending.delete(msg.subject)
      applyReply(p, msg.data, at)
    } else {
      // A reply seen before its request (not expected on one server): keep the latest few thousand.
      early.set(msg.subject, { data: msg.data, n: at })
      if (early.size > 5000) early.delete(early.keys().next().value!)
    }
  }
  sub('_INBOX.>', reply)
  // Waited jobs' final writes are acknowledged on subjects the APIs hear too (jobs/streams/js-inbox.ts).
  sub(`bosun.${cluster}.acks.>`, reply)
  await nc.flush()
  let stopping: Promise<void> | undefined
  return {
    writes,
    messages,
    results,
    now: () => n,
    stop() {
      stopping ??= nc.close().catch(() => undefined)
      return stopping
    },
  }
}
