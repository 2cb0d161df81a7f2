/**
 * One profiled throughput run: every bosun process runs with `--cpu-prof` (NODE_OPTIONS), the cluster
 * is stopped gracefully so the profiles are written, and the main threads of the API, the boss and
 * one job-running worker are summarised (self time per function and per code origin).
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { formatProfile, summarizeDir, type ProfileSummary } from '../lib/cpuprofile.js'
import { progress } from '../lib/report.js'
import { openCluster, type ClusterSettings, type Nats, type Zk } from './cluster.js'
import { throughputSingle, type ThroughputResult } from './throughput.js'

export interface ProfileResult {
  dir: string
  throughput: ThroughputResult
  profiles: { role: string; summary: ProfileSummary }[]
  text: string
}

export async function profiledRun(zk: Zk, nats: Nats, settings: ClusterSettings, jobs: number): Promise<ProfileResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bosun-bench-prof-'))
  const c = await openCluster(zk, nats, { ...settings, env: { ...settings.env, NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` } }, 'prof')
  let throughput: ThroughputResult
  const roles = new Map<number, string>()
  try {
    await throughputSingle(c, 500)
    throughput = await throughputSingle(c, jobs)
    progress(`profile run: ${Math.round(throughput.jobsPerSec)} jobs/s under --cpu-prof`)
    const state = await c.cluster.clusterState()
    roles.set(c.cluster.api.pid, 'api')
    if (state.boss) roles.set(state.boss.pid, 'boss')
    const worker = state.workers[0]
    if (worker) roles.set(worker.pid, 'worker')
    // Graceful stop: the profiles are written when the processes exit normally.
    c.client.close()
    await c.events.close()
    await Promise.all([c.cluster.api.stop(), ...c.cluster.workers.map((w) => w.stop())])
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
