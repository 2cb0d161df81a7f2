/**
 * CPU profiling of a bosun process over a chosen window, from NODE_OPTIONS (Node 20 refuses
 * `--cpu-prof` there): `NODE_OPTIONS="--import=<repo>/dist/bench/lib/cpu-prof-preload.js"` plus
 * `BENCH_CPU_PROF_DIR=<dir>`. The first SIGUSR2 starts the profiler, the next one stops it and writes
 * the main thread's profile as `CPU.bench.0.<pid>.0.<n>.cpuprofile` (n counts windows), so start-up
 * and shutdown stay out of the figures. A window still open at a normal exit is written then.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { join } from 'node:path'
import { isMainThread } from 'node:worker_threads'

const dir = process.env.BENCH_CPU_PROF_DIR
if (dir && isMainThread) {
  const session = new Session()
  session.connect()
  session.post('Profiler.enable')
  session.post('Profiler.setSamplingInterval', { interval: 1000 })
  let open = false
  let windows = 0
  const stop = () => {
    open = false
    // The in-process session answers synchronously (this also works inside 'exit').
    session.post('Profiler.stop', (err, res) => {
      if (err || !res?.profile) return
      try {
        writeFileSync(join(dir, `CPU.bench.0.${process.pid}.0.${++windows}.cpuprofile`), JSON.stringify(res.profile))
      } catch {
        /* best effort */
      }
    })
  }
  process.on('SIGUSR2', () => {
    if (open) return stop()
    open = true
    session.post('Profiler.start')
  })
  process.once('exit', () => {
    if (open) stop()
  })
}
