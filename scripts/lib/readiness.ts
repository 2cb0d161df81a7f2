/**
 * Cluster readiness as a user sees it: every API instance answers `GET /readyz` with 200,
 * `GET /cluster` names a boss elected since this launch and, when the formation has a worker besides
 * the boss, lists a worker that runs jobs (else the curl example printed at "ready" could meet a 404:
 * no worker advertises the function). A boss elected before the launch is a killed run's, listed
 * until its ZooKeeper session expires (its node id is the same as a new process's).
 */

/** The `GET /cluster` answer, as far as the launcher cares. */
export interface ClusterView {
  boss: { id: string; since?: string } | null
  workers: { id: string }[]
}

export interface ReadinessOptions {
  /** Base URLs of the API instances, e.g. http://127.0.0.1:3000. */
  readonly apiUrls: readonly string[]
  /** Wait for a boss too (false when there are no workers). */
  readonly expectBoss: boolean
  /** Wait for a worker that runs jobs too (the formation has two workers or more). */
  readonly expectJobWorker?: boolean
  readonly timeoutMs: number
  /** Stop waiting early (shutdown requested). */
  readonly signal?: AbortSignal
  /** Bearer token for `GET /cluster` when the API requires one (BOSUN_API_TOKENS). */
  readonly token?: string
  /** When the launch began (ms since the epoch): a boss elected before it is not this launch's. */
  readonly launchedAt?: number
}

export type Readiness = { ready: true; cluster: ClusterView | undefined } | { ready: false; waitingFor: string }

async function getJson(url: string, token?: string): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {}
  const res = await fetch(url, { signal: AbortSignal.timeout(2000), headers })
  const text = await res.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = text
  }
  return { status: res.status, body }
}

/** What is still missing, or undefined when the cluster is ready (one probe round). */
export async function probe(
  apiUrls: readonly string[],
  expectBoss: boolean,
  token?: string,
  expectJobWorker = false,
  launchedAt?: number,
): Promise<{ missing?: string; cluster?: ClusterView }> {
  for (const url of apiUrls) {
    const r = await getJson(`${url}/readyz`, token).catch((err: Error) => ({ status: 0, body: err.message }))
    if (r.status !== 200)
      return { missing: `${url}/readyz (${r.status === 0 ? 'not listening' : `status ${r.status}`})` }
  }
  if (apiUrls.length === 0 || !expectBoss) return {}
  const r = await getJson(`${apiUrls[0]}/cluster`, token).catch(() => undefined)
  const cluster = r?.status === 200 ? (r.body as ClusterView) : undefined
  if (!cluster?.boss) return { missing: 'a boss in GET /cluster' }
  const since = Date.parse(cluster.boss.since ?? '')
  if (launchedAt !== undefined && !(since >= launchedAt))
    return { missing: 'a boss elected since this launch in GET /cluster (the one listed is older)' }
  const bossId = cluster.boss.id
  const hasJobWorker = Array.isArray(cluster.workers) && cluster.workers.some((w) => w?.id !== bossId)
  if (expectJobWorker && !hasJobWorker) return { missing: 'a worker besides the boss in GET /cluster' }
  return { cluster }
}

/** Poll until ready, the timeout passes, or the signal aborts. */
export async function waitReady(opts: ReadinessOptions): Promise<Readiness> {
  const deadline = Date.now() + opts.timeoutMs
  let missing = 'the first probe'
  while (Date.now() < deadline && !opts.signal?.aborted) {
    const r = await probe(opts.apiUrls, opts.expectBoss, opts.token, opts.expectJobWorker, opts.launchedAt)
    if (r.missing === undefined) return { ready: true, cluster: r.cluster }
    missing = r.missing
    await new Promise((res) => setTimeout(res, 250))
  }
  return { ready: false, waitingFor: missing }
}
