/**
 * The dashboard (GET /ui) in a real headless Chromium (Debian's /usr/bin/chromium, driven by
 * puppeteer-core) against a real cluster. It renders the boss, the workers, the recent jobs (a click
 * shows one job's detail) and the current boss term; after a kill -9 of the boss the page, by itself,
 * shows the new boss and the new term on the leadership timeline with the failover gap before it
 * (the value GET /cluster/leadership answers: more than 0, about the session timeout). With bearer
 * auth on, it asks for a token, then loads the data and follows the live event stream, and the token
 * never appears in a URL. Every wait is on a DOM condition, never a fixed sleep.
 *
 * Artefacts: a screenshot after the failover in $CI_OUTPUT_DIR (default .ci/out)/dashboard.png; with
 * BOSUN_UPDATE_SCREENSHOT=1 it also replaces docs/dashboard.png (the README's picture).
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import {
  TestCluster,
  spawnBosun,
  e2eFunctionsDir,
  startClusterPatiently,
  waitForNewBoss,
  type ClusterState,
} from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { attr, openTab, screenshot, until, WAIT_MS } from './browser-tab.js'

const SESSION_MS = 2000

const zk = await startZooKeeper()
const nats = await startNats()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

// The page functions below run in Chromium (puppeteer serialises them); the project's TypeScript lib
// has no DOM, so the few browser globals they use are declared here.
interface PageElement {
  textContent: string | null
  hidden: boolean
  dataset: Record<string, string | undefined>
  getAttribute(name: string): string | null
}
declare const document: {
  querySelector(selector: string): PageElement | null
  querySelectorAll(selector: string): Iterable<PageElement>
  cookie: string
}
declare const sessionStorage: Record<string, string>
declare const localStorage: Record<string, string>
declare const CSS: { escape(x: string): string }

t.test('the dashboard shows the cluster, and a kill -9 of the boss as a new term after a gap', async (t) => {
  const c = new TestCluster({
    zk,
    nats,
    cluster: uniqueName('ui'),
    workers: 3,
    concurrency: 4,
    functionsDir: e2eFunctionsDir(),
    sessionTimeoutMs: SESSION_MS,
  })
  t.teardown(() => c.close())
  await startClusterPatiently(c, 2)
  const first = (await waitFor(async () => {
    const s = await c.clusterState()
    return s.boss && s.workers.length >= 2 ? s : undefined
  })) as ClusterState & { boss: NonNullable<ClusterState['boss']> }

  const echo = await c.post('/jobs/batch', {
    jobs: Array.from({ length: 6 }, (_, i) => ({ function: 'echo', payload: { i } })),
  })
  t.equal(echo.status, 202)
  const failed = await c.post('/jobs', { function: 'fail', payload: { message: 'boom on purpose' }, maxAttempts: 1 })
  const ids: string[] = [...echo.body.jobs.map((j: { id: string }) => j.id), failed.body.id]
  for (const id of ids) await c.waitJob(id, WAIT_MS)

  const tab = await openTab(t, `${c.apiUrl}/ui`)
  await until(
    tab,
    `boss ${first.boss.id} epoch ${first.boss.epoch}`,
    (id, epoch) => {
      const el = document.querySelector('[data-testid="boss"]')
      return (
        el !== null &&
        el.dataset.bossId === id &&
        el.dataset.epoch === String(epoch) &&
        /boss for/.test(el.textContent ?? '')
      )
    },
    first.boss.id,
    first.boss.epoch,
  )
  const bossText = await tab.page.$eval('[data-testid="boss"]', (el) => el.textContent ?? '')
  t.match(bossText, first.boss.host, 'the boss panel names its host')
  t.match(bossText, String(first.boss.pid), 'and its pid')

  const workerIds = first.workers.map((w) => w.id).sort()
  await until(
    tab,
    `the workers ${workerIds.join(', ')}`,
    (want: string[]) =>
      want.every((id) => document.querySelector(`[data-testid="workers"] tr[data-worker-id="${CSS.escape(id)}"]`)),
    workerIds,
  )
  const row = await tab.page.$eval(
    `[data-testid="workers"] tr[data-worker-id="${first.workers[0]!.id}"]`,
    (el) => el.textContent ?? '',
  )
  t.match(row, first.workers[0]!.host, 'a worker row shows its host')
  t.match(row, `/ ${first.workers[0]!.capacity}`, 'and its capacity')
  t.match(row, 'echo', 'and its functions')

  await until(
    tab,
    'the submitted jobs, the failed one failed',
    (want: string[], failedId: string) =>
      want.every((id) => document.querySelector(`[data-testid="jobs"] tr[data-job-id="${id}"]`)) &&
      document.querySelector(`tr[data-job-id="${failedId}"]`)?.getAttribute('data-state') === 'failed',
    ids,
    failed.body.id,
  )
  await until(
    tab,
    `the current term (epoch ${first.boss.epoch}) on the timeline`,
    (epoch) => document.querySelector(`rect.term-bar.current[data-term-epoch="${epoch}"]`),
    first.boss.epoch,
  )
  await until(tab, 'a boss.elected event in the list', () =>
    document.querySelector('[data-testid="events"] li[data-event-type="boss.elected"]'),
  )
  await until(tab, 'the queue figures', () =>
    /^\d[\d,]*$/.test(document.querySelector('[data-testid="finished"]')?.textContent ?? ''),
  )

  // A click on a job shows its detail.
  await tab.page.click(`[data-testid="jobs"] tr[data-job-id="${failed.body.id}"]`)
  await until(
    tab,
    'the failed job’s detail',
    (id) => {
      const el = document.querySelector('[data-testid="job-detail"]')
      return el !== null && el.dataset.jobId === id && /boom on purpose/.test(el.textContent ?? '')
    },
    failed.body.id,
  )
  const detail = await tab.page.$eval('[data-testid="job-detail"]', (el) => el.textContent ?? '')
  t.match(detail, 'failed', 'the detail shows the state')
  t.match(detail, /attempts\s*1/, 'the attempts')
  t.match(detail, /worker\s*w\d/, 'the worker that ran it')
  t.match(detail, /finishedAt/, 'and its timestamps')

  // Jobs flowing through the kill, so the throughput line has points and the workers saw dispatches.
  let flowing = true
  const flow = (async () => {
    while (flowing) {
      const jobs = Array.from({ length: 5 }, () => ({ function: 'sleep', payload: { ms: 20 } }))
      await c.post('/jobs/batch', { jobs }).catch(() => undefined)
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  t.teardown(async () => {
    flowing = false
    await flow
  })
  const points = () => tab.page.$eval('[data-testid="spark-rate"]', (el) => Number(el.getAttribute('data-points')))
  await until(
    tab,
    'throughput points',
    () => Number(document.querySelector('[data-testid="spark-rate"]')?.getAttribute('data-points')) >= 5,
  )
  const before = await points()

  const boss = await c.bossProcess()
  await boss.kill()
  const second = await waitForNewBoss(c, first.boss.id, WAIT_MS)
  t.ok(second.boss.epoch > first.boss.epoch, `a new boss ${second.boss.id}, epoch ${second.boss.epoch}`)

  await until(
    tab,
    `the new boss ${second.boss.id} in the boss panel`,
    (id, epoch) => {
      const el = document.querySelector('[data-testid="boss"]')
      return el !== null && el.dataset.bossId === id && el.dataset.epoch === String(epoch)
    },
    second.boss.id,
    second.boss.epoch,
  )
  await until(
    tab,
    `the new term (epoch ${second.boss.epoch}) and the gap before it`,
    (epoch) =>
      document.querySelector(`rect.term-bar[data-term-epoch="${epoch}"]`) &&
      document.querySelector(`rect.gap[data-gap-epoch="${epoch}"][data-gap-ms]`),
    second.boss.epoch,
  )
  const gapMs = Number(await attr(tab, `rect.gap[data-gap-epoch="${second.boss.epoch}"]`, 'data-gap-ms'))
  const terms = (await c.get('/cluster/leadership')).body.terms as { epoch: number; gapBeforeMs?: number }[]
  const term = terms.find((x) => x.epoch === second.boss.epoch)
  t.equal(gapMs, Math.round(term!.gapBeforeMs!), `the gap shown is GET /cluster/leadership's (${gapMs} ms)`)
  t.ok(gapMs > 0, 'the gap is positive')
  t.ok(
    gapMs >= SESSION_MS / 2 && gapMs <= SESSION_MS + 15_000,
    `a kill -9 costs about the session timeout (${SESSION_MS} ms): gap ${gapMs} ms`,
  )
  t.equal(
    await attr(tab, `rect.term-bar[data-term-epoch="${first.boss.epoch}"]`, 'data-ended'),
    'crashed',
    'the old term ended: crashed',
  )
  const gapLabel = await tab.page.$$eval('text.gap-label', (els) => els.map((e) => e.textContent ?? ''))
  t.ok(
    gapLabel.some((x) => /^gap [\d,.]+ (ms|s)$/.test(x)),
    `the gap is labelled with its value (${gapLabel.join('; ')})`,
  )
  await until(
    tab,
    'the new boss’s election, live',
    (epoch) =>
      document.querySelector(`[data-testid="events"] li[data-event-type="boss.elected"][data-epoch="${epoch}"]`),
    second.boss.epoch,
  )
  await until(tab, 'the stream live', () => document.querySelector('[data-testid="stream-status"][data-state="live"]'))
  t.equal(
    await tab.page.$eval('[data-testid="banner"]', (el) => (el as unknown as PageElement).hidden),
    true,
    'no problem',
  )
  // For the picture: the new boss's load reports, with some throughput history after the failover.
  await until(
    tab,
    'the new term’s throughput',
    (epoch, n) =>
      new RegExp(`epoch ${epoch}\\)`).test(document.querySelector('[data-testid="stats"]')?.textContent ?? '') &&
      Number(document.querySelector('[data-testid="spark-rate"]')?.getAttribute('data-points')) >= n,
    second.boss.epoch,
    before + 5,
  )
  flowing = false
  await flow
  await screenshot(tab, 'dashboard.png')

  // Every worker gone: no boss, and the page says since when.
  await Promise.all(c.workers.map((w) => w.kill()))
  await until(tab, 'the leaderless state', () => {
    const el = document.querySelector('[data-testid="boss"]')
    return (
      el?.getAttribute('data-state') === 'leaderless' && /no boss — leaderless since \d\d:/.test(el.textContent ?? '')
    )
  })
  t.same(tab.errors, [], 'no script error in the page')
})

/** A TestCluster whose own requests carry the bearer token (the API wants one). */
class AuthedCluster extends TestCluster {
  constructor(
    opts: ConstructorParameters<typeof TestCluster>[0],
    private readonly token: string,
  ) {
    super(opts)
  }
  override async clusterState(): Promise<ClusterState> {
    const res = await fetch(`${this.apiUrl}/cluster`, { headers: { authorization: `Bearer ${this.token}` } })
    return (await res.json()) as ClusterState
  }
  override post(path: string, body: unknown) {
    return super.post(path, body, { authorization: `Bearer ${this.token}` })
  }
}

t.test('with BOSUN_API_TOKENS: the page asks for a token, then works, and no URL carries it', async (t) => {
  const token = `ui-token-${Math.random().toString(36).slice(2)}`
  const c = new AuthedCluster(
    {
      zk,
      nats,
      cluster: uniqueName('uiauth'),
      workers: 2,
      concurrency: 2,
      sessionTimeoutMs: SESSION_MS,
      env: { BOSUN_API_TOKENS: token },
    },
    token,
  )
  t.teardown(() => c.close())
  await startClusterPatiently(c, 1)
  const state = await c.clusterState()
  const job = await c.post('/jobs', { function: 'echo', payload: { hello: 'auth' } })
  t.equal(job.status, 202)

  const tab = await openTab(t, `${c.apiUrl}/ui`)
  await until(tab, 'the token form', () => !document.querySelector('[data-testid="auth"]')!.hidden)
  t.equal(await attr(tab, '[data-testid="boss"]', 'data-state'), 'unknown', 'no data without a token')

  // A wrong token is refused and asked again.
  await tab.page.type('[data-testid="auth"] input', 'not-the-token')
  await tab.page.keyboard.press('Enter')
  await until(tab, 'the refusal', () =>
    /refused/.test(document.querySelector('[data-testid="auth-note"]')?.textContent ?? ''),
  )
  await tab.page.type('[data-testid="auth"] input', token)
  await tab.page.keyboard.press('Enter')
  await until(tab, 'the form gone', () => document.querySelector('[data-testid="auth"]')!.hidden)
  await until(
    tab,
    'the boss, with the token',
    (id) => document.querySelector('[data-testid="boss"]')?.dataset.bossId === id,
    state.boss!.id,
  )
  await until(
    tab,
    'the job',
    (id) => document.querySelector(`[data-testid="jobs"] tr[data-job-id="${id}"]`),
    job.body.id,
  )
  await until(tab, 'the live stream', () => document.querySelector('[data-testid="stream-status"][data-state="live"]'))
  // Something happens: the stream brings it.
  const joiner = c.addWorker()
  await until(
    tab,
    `${joiner.name} joining, live`,
    (name) =>
      [...document.querySelectorAll('[data-testid="events"] li[data-event-type="worker.joined"] .what')].some(
        (el) => el.textContent === name,
      ),
    joiner.name,
  )

  // The API goes away: the page says so instead of going blank, and recovers when it is back.
  const port = new URL(c.apiUrl).port
  await c.api.kill()
  await until(tab, 'the unreachable banner', () => {
    const el = document.querySelector('[data-testid="banner"]')
    return el !== null && !el.hidden && /unreachable/.test(el.textContent ?? '')
  })
  t.ok(await tab.page.$('[data-testid="boss"][data-boss-id]'), 'the last data stay on the page')
  c.api = spawnBosun('api', 'dist/api/main.js', {
    ...c.env(),
    PORT: port,
    HOST: '127.0.0.1',
    BOSUN_NODE_ID: `api-${port}-again`,
  })
  await until(tab, 'the banner gone', () => document.querySelector('[data-testid="banner"]')!.hidden)
  await until(tab, 'the stream live again', () =>
    document.querySelector('[data-testid="stream-status"][data-state="live"]'),
  )
  const another = c.addWorker()
  await until(
    tab,
    `${another.name} joining, live after the reconnect`,
    (name) =>
      [...document.querySelectorAll('[data-testid="events"] li[data-event-type="worker.joined"] .what')].some(
        (el) => el.textContent === name,
      ),
    another.name,
  )
  const resumed = tab.requests.filter((r) => r.url().endsWith('/cluster/events/stream'))
  t.ok(
    resumed.some((r) => /^\d+$/.test(r.headers()['last-event-id'] ?? '')),
    'the stream was resumed with Last-Event-ID',
  )

  const urls = tab.requests.map((r) => r.url())
  t.ok(urls.length > 5, `${urls.length} requests made`)
  t.same(
    urls.filter((u) => u.includes(token) || decodeURIComponent(u).includes(token)),
    [],
    'no request URL carries the token',
  )
  const stream = tab.requests.filter((r) => r.url().endsWith('/cluster/events/stream'))
  t.ok(stream.length >= 1, 'the page read the event stream')
  t.ok(
    stream.some((r) => r.headers().authorization === `Bearer ${token}`),
    'with the token in the Authorization header',
  )
  t.ok(
    tab.requests
      .filter((r) => /\/(cluster|jobs)/.test(new URL(r.url()).pathname))
      .some((r) => r.headers().authorization === `Bearer ${token}`),
    'data calls carry the header',
  )
  const stored = await tab.page.evaluate(() => ({
    session: Object.values(sessionStorage),
    local: Object.values(localStorage),
    cookie: document.cookie,
  }))
  t.same(stored, { session: [token], local: [], cookie: '' }, 'the token is kept in sessionStorage only')
  await screenshot(tab, 'dashboard-auth.png')
  t.same(tab.errors, [], 'no script error in the page')
})
