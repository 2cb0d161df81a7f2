/**
 * The boss's scheduler wired to the real stores: schedules and fired marks from the schedule store
 * (jobs/schedules/store.ts), jobs stored through a group committer on the job store with their due
 * time's idempotency key (the same claims the API's submits use), fired jobs' states read back for
 * `overlap`. One per boss term, started when the term dispatches (BossRole's side tasks).
 */
import type { ScheduleStore } from '../../jobs/schedules/store.js'
import type { JobStreams } from '../../jobs/streams/index.js'
import type { Logger } from '../../runner/logger.js'
import { Scheduler } from './scheduler.js'

export interface ScheduleRunnerDeps {
  jobs: JobStreams
  schedules: ScheduleStore
  logger: Logger
}

/** A starter for BossRole's side tasks: the schedules of the term `epoch`, until the returned stop. */
export function scheduleRunner(d: ScheduleRunnerDeps): (epoch: number, acting: () => boolean) => () => void {
  const commits = d.jobs.groupCommitter()
  return (epoch, acting) => {
    const scheduler = new Scheduler(
      {
        watch: (onChange) => d.schedules.watch(onChange),
        fired: (id) => d.schedules.fired(id),
        markFired: (id, mark) => d.schedules.markFired(id, mark),
        submit: async (job, key) => {
          const { id, stored } = commits.add({ ...job, idempotencyKey: key }, key, new Date().toISOString())
          const holder = await stored
          return holder?.id ?? id
        },
        jobState: async (id) => (await d.jobs.reader.get(id))?.state,
      },
      { epoch, acting, logger: d.logger },
    )
    scheduler.start().catch((err: unknown) => d.logger.error({ err, epoch }, 'the schedules could not be followed'))
    return () => scheduler.stop()
  }
}
