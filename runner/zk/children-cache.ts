/**
 * ChildrenCache: the children of one znode and their parsed data, kept correct by watches
 * (Curator's PathChildrenCache; README "Design notes", recipe 9). States: `idle → ready ⇄ (refreshing) → closed`.
 *
 * Fixes the seed's defects 1 and 5: a directory that does not exist yet is watched with an exists watch
 * and loaded when it appears; a child deleted between getChildren and getData is skipped alone (the
 * rest of the answer stands); invalid data is skipped with a warning. `reset()` re-reads everything
 * and re-arms every watch (after a new session or a reconnect). Reads on a ready cache cost nothing.
 */
import type { Logger } from '../logger.js'
import { isZkError, type ZkWatcher } from './primitives.js'
import type { ZkSession } from './session.js'
import { SingleFlight } from './single-flight.js'

export type ChildrenCacheState = 'idle' | 'ready' | 'closed'

/** Test seams: run between the steps of a load (e.g. delete a child from another session). */
export interface ChildrenCacheHooks {
  afterGetChildren?(dir: string, children: string[]): void | Promise<void>
}

export interface ChildrenCacheOptions<T> {
  session: ZkSession
  /** The directory whose children are cached. */
  dir: string
  /** Parse one child's data: the value, or a reason string when invalid (skipped with a warning). */
  parse(child: string, data: Buffer): T | string
  logger: Logger
  /** Called after a load changed the set of values. */
  onChange?(values: T[]): void
  /** Value equality, to decide whether a load changed anything. */
  same(a: T[], b: T[]): boolean
  hooks?: ChildrenCacheHooks | undefined
}

interface Child<T> {
  /** Parsed value; undefined when the data was invalid. */
  value: T | undefined
}

export class ChildrenCache<T> {
  private phase: ChildrenCacheState = 'idle'
  private children = new Map<string, Child<T>>()
  private values: T[] = []
  private readonly loader: SingleFlight
  private readonly watchers = new Map<string, ZkWatcher>()
  /** Children whose data watch fired (or whose session changed): re-read on the next load. */
  private readonly dirty = new Set<string>()
  private readonly log: Logger
  private readonly onDirEvent: ZkWatcher = () => this.loader.kick()

  constructor(private readonly opts: ChildrenCacheOptions<T>) {
    this.log = opts.logger
    this.loader = new SingleFlight(() => this.load(), {
      retryMs: 250,
      onError: (err) => this.log.warn({ err, dir: opts.dir }, 'cache refresh failed; retrying'),
    })
  }

  get state(): ChildrenCacheState {
    return this.phase
  }

  /** True when `get()` is answered from memory. */
  get isReady(): boolean {
    return this.phase === 'ready'
  }

  /** The cached values (no request). */
  get(): T[] {
    return this.values
  }

  /** Values, loading first when not ready yet. */
  async read(): Promise<T[]> {
    if (this.phase !== 'ready') await this.refresh()
    return this.values
  }

  /** Re-read (resolves after a load that started after this call). */
  refresh(): Promise<void> {
    return this.loader.run()
  }

  /** Forget every child's data (their watches may be gone) and re-read everything. */
  reset(): void {
    for (const name of this.children.keys()) this.dirty.add(name)
    this.loader.kick()
  }

  close(): void {
    this.phase = 'closed'
    this.loader.close()
  }

  private async load(): Promise<void> {
    const { session, dir } = this.opts
    const pin = { generation: session.generation }
    let names: string[]
    try {
      names = (await session.getChildren(dir, this.onDirEvent, pin)).children
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err
      // The seed cached [] with no watch here: watch for the directory's creation instead.
      if (await session.exists(dir, this.onDirEvent, pin)) this.loader.repeat()
      else this.apply(new Map())
      return
    }
    await this.opts.hooks?.afterGetChildren?.(dir, names)
    const next = new Map<string, Child<T>>()
    const reading: string[] = []
    const reads = names.map(async (name) => {
      const known = this.children.get(name)
      if (known && !this.dirty.has(name)) return void next.set(name, known)
      this.dirty.delete(name)
      reading.push(name)
      try {
        const { data } = await session.getData(`${dir}/${name}`, this.watcherFor(name), pin)
        const parsed = this.opts.parse(name, data)
        if (typeof parsed === 'string') this.log.warn({ dir, child: name, reason: parsed }, 'ignoring invalid data')
        next.set(name, { value: typeof parsed === 'string' ? undefined : parsed })
      } catch (err) {
        // Deleted between getChildren and getData: skip this child only (the seed emptied the answer).
        if (isZkError(err, 'NO_NODE')) return
        throw err
      }
    })
    try {
      await Promise.all(reads)
    } catch (err) {
      for (const name of reading) this.dirty.add(name) // not applied: read them again next time
      throw err
    }
    if (this.phase !== 'closed') this.apply(next)
  }

  private apply(next: Map<string, Child<T>>): void {
    this.children = next
    for (const name of this.watchers.keys()) if (!next.has(name)) this.watchers.delete(name)
    const values = [...next.keys()].sort().flatMap((k) => {
      const v = next.get(k)?.value
      return v === undefined ? [] : [v]
    })
    const changed = !this.opts.same(this.values, values)
    this.values = values
    const first = this.phase === 'idle'
    this.phase = 'ready'
    if (changed || first) this.opts.onChange?.(values)
  }

  /** A stable data watcher per child (the client de-duplicates watchers by identity). */
  private watcherFor(name: string): ZkWatcher {
    let w = this.watchers.get(name)
    if (!w) {
      w = () => {
        this.dirty.add(name)
        this.loader.kick()
      }
      this.watchers.set(name, w)
    }
    return w
  }
}
