/**
 * Where a `?wait` request's time goes, hop by hop: a NATS connection of the benchmark subscribes to
 * every subject (core NATS hands it a copy of each message) and timestamps the messages of each job
 * — its submission, JetStream's acknowledgements, the dispatch, the final record's write and
 * announcement, the result, the finished notice — against when the request was sent and when its
 * answer arrived. `POST /jobs?wait` of `noop`, one request every `gapMs` (≈ 200/s by default, as the
 * latency rows of e2e and compare), one run per cluster. Each time includes one more leg: nats-server
 * to this observer. Medians per run; the summary is over runs.
 */
import { connect, type Msg } from '@nats-io/transport-node'
import { startNats, startZooKeeper } from '../test/helpers/servers.js'
import { openCluster, type BenchCluster, type Nats } from './e2e/cluster.js'
import { JsonClient } from './lib/http.js'
import { median, progress, summarize, type Row } from './lib/report.js'

export interface HopsOptions {
  runs?: number
  /** Requests per run (the first tenth are warm-up, not counted). */
  requests?: number
  /** Between two sends (ms). */
  gapMs?: number
  workers?: number
}

/** The hops in path order (an observed message's kind, or the answer). */
const HOPS = [
  'submit',
  'submit ack',
  'dispatch',
  'dispatch reply',
  'announce',
  'final write',
  'final ack',
  'HTTP answer',
  'result',
  'result ack',
  'finished notice',
] as const
type Hop = (typeof HOPS)[number]

const text = new TextDecoder()

/** Job ids a message names, with its kind (undefined: not a message of a job's path). */
function classify(m: Msg, prefix: string): { kind: Hop; ids: string[] } | undefined {
  const s = m.subject
  if (s.startsWith(`${prefix}sub.`)) return { kind: 'submit', ids: [`${s.slice(prefix.length + 4)}-000`] }
  if (s.startsWith(`${prefix}done.`)) return { kind: 'final write', ids: [s.slice(prefix.length + 5)] }
  const within = s.startsWith(`${prefix}events.finish`) || s.startsWith(`${prefix}proc.`)
  if (!within) return undefined
  let env: { type?: string; body?: { jobs?: { id?: string }[]; results?: { jobId?: string }[] } } | undefined
  try {
    env = JSON.parse(text.decode(m.data)) as typeof env
  } catch {
    return undefined
  }
  const ids = (xs: Array<{ id?: string; jobId?: string }> | undefined) =>
    (xs ?? []).map((x) => x.id ?? x.jobId).filter((x): x is string => typeof x === 'string')
  if (s === `${prefix}events.finishing`) return { kind: 'announce', ids: ids(env?.body?.jobs) }
  if (s === `${prefix}events.finished`) return { kind: 'finished notice', ids: ids(env?.body?.jobs) }
  if (env?.type === 'worker.dispatch') return { kind: 'dispatch', ids: ids(env.body?.jobs) }
  if (env?.type === 'boss.results') return { kind: 'result', ids: ids(env.body?.results) }
  return undefined
}

const REPLY_OF: Partial<Record<Hop, Hop>> = {
  submit: 'submit ack',
  dispatch: 'dispatch reply',
  'final write': 'final ack',
  result: 'result ack',
}

/** One run: per hop, the median of (seen − sent) over the counted requests, in ms. */
async function oneRun(open: () => Promise<BenchCluster>, o: Required<HopsOptions>) {
  const c = await open()
  const nc = await connect({ servers: c.nats.url, name: 'bench-hops' })
  const seen = new Map<string, Map<Hop, number>>()
  const replies = new Map<string, { kind: Hop; ids: string[] }>()
  const prefix = `bosun.${c.name}.`
  const mark = (ids: string[], kind: Hop, at: number) => {
    for (const id of ids) {
      let m = seen.get(id)
      if (!m) seen.set(id, (m = new Map<Hop, number>()))
      if (!m.has(kind)) m.set(kind, at)
    }
  }
  nc.subscribe('>', {
    callback: (_err, m) => {
      const at = performance.now()
      const reply = replies.get(m.subject)
      if (reply) {
        replies.delete(m.subject)
        return mark(reply.ids, reply.kind, at)
      }
      const c = classify(m, prefix)
      if (!c) return
      mark(c.ids, c.kind, at)
      const answer = REPLY_OF[c.kind]
      if (m.reply && answer) replies.set(m.reply, { kind: answer, ids: c.ids })
    },
  })
  await nc.flush()
  const client = new JsonClient(c.cluster.apiUrl, 64)
  const sent = new Map<string, { at: number; answered: number }>()
  try {
    const pending: Promise<void>[] = []
    for (let i = 0; i < o.requests; i++) {
      await new Promise((r) => setTimeout(r, o.gapMs))
      const at = performance.now()
      const counted = i >= o.requests / 10
      pending.push(
        client.post<{ id?: string }>('/jobs?wait=5000', { function: 'noop' }, 30_000).then((res) => {
          if (counted && res.status === 200 && res.body?.id) sent.set(res.body.id, { at, answered: performance.now() })
        }),
      )
    }
    await Promise.all(pending)
    await new Promise((r) => setTimeout(r, 500)) // results and notices after the answers
  } finally {
    client.close()
    await nc.close()
    await c.close()
  }
  const per = new Map<Hop, number[]>(HOPS.map((h) => [h, []]))
  for (const [id, s] of sent) {
    per.get('HTTP answer')!.push(s.answered - s.at)
    for (const [kind, at] of seen.get(id) ?? []) per.get(kind)!.push(at - s.at)
  }
  return { counted: sent.size, medians: Object.fromEntries(HOPS.map((h) => [h, median(per.get(h)!)])) }
}

export async function hopsBench(opts: HopsOptions = {}): Promise<{ rows: Row[]; data: Record<string, unknown> }> {
  const o: Required<HopsOptions> = {
    runs: opts.runs ?? 3,
    requests: opts.requests ?? 2000,
    gapMs: opts.gapMs ?? 5,
    workers: opts.workers ?? 5,
  }
  const zk = await startZooKeeper({ tickTime: 100 })
  let nats: Nats | undefined
  const runs: Array<Awaited<ReturnType<typeof oneRun>>> = []
  try {
    nats = await startNats()
    const n = nats
    const settings = { workers: o.workers, concurrency: 16, sessionTimeoutMs: 2000 }
    for (let run = 1; run <= o.runs; run++) {
      const r = await oneRun(() => openCluster(zk, n, settings, 'hops'), o)
      progress(`hops run ${run}: ${r.counted} requests counted, answer p50 ${r.medians['HTTP answer']?.toFixed(3)} ms`)
      runs.push(r)
    }
  } finally {
    await nats?.close()
    await zk.close()
  }
  const rows: Row[] = HOPS.map((h) => ({
    name: `${h} (ms after the request was sent, p50)`,
    unit: 'ms',
    summary: summarize(runs.map((r) => r.medians[h] ?? Number.NaN)),
  }))
  return { rows, data: { settings: o, runs } }
}
