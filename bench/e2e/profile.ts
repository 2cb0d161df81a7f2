/**
 * One profiled throughput run: every bosun process runs with a CPU-profiling preload (NODE_OPTIONS
 * `--import`, see lib/cpu-prof-preload.ts; Node 20 refuses `--cpu-prof` in NODE_OPTIONS); SIGUSR2
 * opens and closes the profiling window around the measured run on the API, the boss and one
 * job-running worker, whose main threads are then summarised (self time per function and origin).
 */
import { mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { formatProfile, summarizeDir, type ProfileSummary } from '../lib/cpuprofile.js'
import { progress, REPO_ROOT } from '../lib/report.js'
import { openCluster, type ClusterSettings, type Nats, type Zk } from './cluster.js'
import { throughputBatch, throughputSingle, type ThroughputResult } from './throughput.js'
import { waitFor } from '../../test/helpers/wait.js'

function summarizable(dir: string, n: number): boolean {
  return readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).length >= n
}

export interface ProfileResult {
  dir: string
  throughput: ThroughputResult
  profiles: { role: string; summary: ProfileSummary }[]
  text: string
}

/** `mode`: which throughput run to profile (POST /jobs one by one, or /jobs/batch of 500). */
export async function profiledRun(
  zk: Zk,
  nats: Nats,
  settings: ClusterSettings,
  jobs: number,
  mode: ThroughputResult['mode'] = 'single',
): Promise<ProfileResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bosun-bench-prof-'))
  const c = await openCluster(
    zk,
    nats,
    {
      ...settings,
      env: {
        ...settings.env,
        NODE_OPTIONS: `--import=${join(REPO_ROOT, 'dist', 'bench', 'lib', 'cpu-prof-preload.js')}`,
        BENCH_CPU_PROF_DIR: dir,
      },
    },
    'prof',
  )
  let throughput: ThroughputResult
  const roles = new Map<number, string>()
  try {
    await throughputSingle(c, 500)
    const state = await c.cluster.clusterState()
    roles.set(c.cluster.api.pid, 'api')
    if (state.boss) roles.set(state.boss.pid, 'boss')
    const worker = state.workers[0]
    if (worker) roles.set(worker.pid, 'worker')
    const toggle = () => {
      for (const pid of roles.keys()) process.kill(pid, 'SIGUSR2')
    }
    toggle() // start the profilers: the window is the throughput run only
    throughput = mode === 'batch' ? await throughputBatch(c, jobs) : await throughputSingle(c, jobs)
    toggle()
    progress(`profile run (${mode}): ${Math.round(throughput.jobsPerSec)} jobs/s while profiling`)
    await waitFor(() => summarizable(dir, roles.size), { timeoutMs: 30_000, what: 'profiles written' })
  } finally {
    await c.close()
  }
  const summaries = summarizeDir(dir, new Set(roles.keys()))
  const profiles: ProfileResult['profiles'] = []
  for (const [pid, role] of roles) {
    const main = summaries.filter((s) => s.pid === pid).sort((a, b) => a.thread - b.thread)[0]
    if (main) profiles.push({ role, summary: main })
  }
  const text = profiles.map((p) => formatProfile(p.role, p.summary)).join('')
  return { dir, throughput, profiles, text }
}
