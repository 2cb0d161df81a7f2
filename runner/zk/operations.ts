/**
 * The request helpers of a ZooKeeper session: promises with timeouts over node-zookeeper-client's
 * callbacks, ACLs on every create, ephemeral tracking (so close() can delete them first), and the
 * protected ephemeral-sequential create (README "Design notes", recipe 3: after a connection loss search the
 * children for our GUID; never blind-retry a create). ZkSession supplies `call()`.
 */
import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type zookeeper from 'node-zookeeper-client'
import {
  CREATE_MODES,
  isEphemeral,
  isUncertain,
  isZkError,
  toBuffer,
  toStat,
  toWatchEvent,
  type CreateModeName,
  type ZkData,
  type ZkStat,
  type ZkWatcher,
} from './primitives.js'

export interface CallOptions {
  /** Refuse to run on any other session than this generation (ZkSession.generation). */
  generation?: number
  /** Per-call timeout. @defaultValue the session's requestTimeoutMs */
  timeoutMs?: number
}

/** Counters a benchmark or test can read. */
export interface SessionStats {
  /** Requests sent on behalf of callers (the liveness probe is not counted). */
  requests: number
  probes: number
  /** Sessions established (1 + number of replacements). */
  sessions: number
  /** Protected creates whose outcome was unknown and that searched for their GUID. */
  protectedSearches: number
  /** Protected creates that found their node after a connection loss (no second create). */
  protectedFound: number
}

/** One operation of a multi (transaction). */
export type ZkOp =
  | { op: 'create'; path: string; data?: ZkData; mode?: CreateModeName }
  | { op: 'setData'; path: string; data: ZkData; version?: number }
  | { op: 'check'; path: string; version: number }
  | { op: 'remove'; path: string; version?: number }

export type ClientCallback<T> = (err: unknown, value?: T) => void
export type ClientRun<T> = (client: zookeeper.Client, done: ClientCallback<T>) => void

export abstract class ZkOperations extends EventEmitter {
  readonly stats: SessionStats = { requests: 0, probes: 0, sessions: 0, protectedSearches: 0, protectedFound: 0 }
  private readonly ephemerals = new Set<string>()
  private readonly wrappers = new WeakMap<ZkWatcher, (ev: zookeeper.Event) => void>()

  constructor(protected readonly acl: zookeeper.ACL[]) {
    super()
  }

  /** Increments with every new session. */
  abstract get generation(): number
  abstract readonly requestTimeoutMs: number
  protected abstract call<T>(op: string, path: string, run: ClientRun<T>, opts?: CallOptions): Promise<T>

  /** Create a znode (with our ACL); resolves with the created path (sequential: with its suffix). */
  async create(
    path: string,
    data?: ZkData,
    mode: CreateModeName = 'persistent',
    opts: CallOptions = {},
  ): Promise<string> {
    const created = await this.call<string>(
      'create',
      path,
      (c, done) => c.create(path, toBuffer(data) ?? (null as never), this.acl, CREATE_MODES[mode], done),
      opts,
    )
    if (isEphemeral(mode)) this.ephemerals.add(created)
    return created
  }

  /**
   * Protected ephemeral-sequential create of `<parent>/<guid>-n_<seq>` (Curator's protected mode):
   * when the outcome of a create is unknown, the children are searched for our GUID before another
   * create is tried. Pinned to the session it starts on. Creates the parent when missing.
   */
  async createProtected(parent: string, data: ZkData, opts: CallOptions & { guid?: string } = {}): Promise<string> {
    const guid = opts.guid ?? randomUUID().replace(/-/g, '')
    const callOpts: CallOptions = { ...opts, generation: opts.generation ?? this.generation }
    const deadline = Date.now() + 3 * (opts.timeoutMs ?? this.requestTimeoutMs)
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.create(`${parent}/${guid}-n_`, data, 'ephemeral-sequential', callOpts)
      } catch (err) {
        if (isZkError(err, 'NO_NODE') && attempt < 3) {
          await this.mkdirp(parent, callOpts)
          continue
        }
        if (!isUncertain(err) || Date.now() > deadline) throw err
      }
      const found = await this.searchProtected(parent, guid, callOpts, deadline)
      if (found) return found
    }
  }

  /** After an uncertain create: the child carrying `guid`, or undefined when the create did not happen. */
  private async searchProtected(
    parent: string,
    guid: string,
    opts: CallOptions,
    deadline: number,
  ): Promise<string | undefined> {
    this.stats.protectedSearches++
    for (;;) {
      try {
        const { children } = await this.getChildren(parent, undefined, opts)
        const mine = children.find((c) => c.startsWith(`${guid}-`))
        if (!mine) return undefined
        this.stats.protectedFound++
        const path = `${parent}/${mine}`
        this.ephemerals.add(path)
        return path
      } catch (err) {
        if (!isUncertain(err) || Date.now() > deadline) throw err
      }
    }
  }

  async getData(path: string, watcher?: ZkWatcher, opts: CallOptions = {}): Promise<{ data: Buffer; stat: ZkStat }> {
    const w = this.wrap(watcher)
    return this.call(
      'getData',
      path,
      (c, done) => {
        const cb = (err: unknown, data?: Buffer, stat?: zookeeper.Stat) =>
          done(err, err ? undefined : { data: data ?? Buffer.alloc(0), stat: toStat(stat!) })
        if (w) c.getData(path, w, cb as never)
        else c.getData(path, cb)
      },
      opts,
    )
  }

  async getChildren(
    path: string,
    watcher?: ZkWatcher,
    opts: CallOptions = {},
  ): Promise<{ children: string[]; stat: ZkStat }> {
    const w = this.wrap(watcher)
    return this.call(
      'getChildren',
      path,
      (c, done) => {
        const cb = (err: unknown, children?: string[], stat?: zookeeper.Stat) =>
          done(err, err ? undefined : { children: children ?? [], stat: toStat(stat!) })
        if (w) c.getChildren(path, w, cb as never)
        else c.getChildren(path, cb)
      },
      opts,
    )
  }

  /** The node's stat, or null when it does not exist (a watcher then waits for its creation). */
  async exists(path: string, watcher?: ZkWatcher, opts: CallOptions = {}): Promise<ZkStat | null> {
    const w = this.wrap(watcher)
    return this.call(
      'exists',
      path,
      (c, done) => {
        const cb = (err: unknown, stat?: zookeeper.Stat | null) =>
          done(err, err ? undefined : stat ? toStat(stat) : null)
        if (w) c.exists(path, w, cb as never)
        else c.exists(path, cb)
      },
      opts,
    )
  }

  async setData(path: string, data: ZkData, version = -1, opts: CallOptions = {}): Promise<ZkStat> {
    return this.call(
      'setData',
      path,
      (c, done) =>
        c.setData(path, toBuffer(data) ?? null, version, (err, stat) => done(err, err ? undefined : toStat(stat))),
      opts,
    )
  }

  /** Delete a node; NO_NODE is an error (callers decide whether it matters). */
  async remove(path: string, version = -1, opts: CallOptions = {}): Promise<void> {
    await this.call<void>('remove', path, (c, done) => c.remove(path, version, (err) => done(err)), opts)
    this.ephemerals.delete(path)
  }

  /** Delete a node if it exists (NO_NODE ignored). */
  async removeIfExists(path: string, version = -1, opts: CallOptions = {}): Promise<void> {
    try {
      await this.remove(path, version, opts)
    } catch (err) {
      if (!isZkError(err, 'NO_NODE')) throw err
      this.ephemerals.delete(path)
    }
  }

  /** Create `path` and any missing ancestors as persistent nodes with our ACL. */
  async mkdirp(path: string, opts: CallOptions = {}): Promise<void> {
    try {
      await this.create(path, undefined, 'persistent', opts)
    } catch (err) {
      if (isZkError(err, 'NODE_EXISTS')) return
      if (!isZkError(err, 'NO_NODE')) throw err
      const parent = path.slice(0, path.lastIndexOf('/'))
      if (parent === '') throw err
      await this.mkdirp(parent, opts)
      await this.mkdirp(path, opts)
    }
  }

  /** Run operations atomically; rejects with the first failing operation's error. */
  async multi(ops: ZkOp[], opts: CallOptions = {}): Promise<unknown[]> {
    const label = ops.map((o) => `${o.op}:${o.path}`).join(',')
    const results = await this.call<unknown[]>(
      'multi',
      label,
      (c, done) => {
        const tx = c.transaction()
        for (const o of ops) {
          if (o.op === 'create')
            tx.create(o.path, toBuffer(o.data) ?? (null as never), this.acl, CREATE_MODES[o.mode ?? 'persistent'])
          else if (o.op === 'setData') tx.setData(o.path, toBuffer(o.data) ?? null, o.version ?? -1)
          else if (o.op === 'check') tx.check(o.path, o.version)
          else tx.remove(o.path, o.version ?? -1)
        }
        tx.commit((err, res) => done(err, res as unknown[]))
      },
      opts,
    )
    for (const o of ops) {
      if (o.op === 'create' && o.mode === 'ephemeral') this.ephemerals.add(o.path)
      if (o.op === 'remove') this.ephemerals.delete(o.path)
    }
    return results
  }

  /** Ephemerals this session created and has not deleted. */
  trackedEphemerals(): string[] {
    return [...this.ephemerals]
  }

  /** The session they belonged to is gone: the server deletes them by itself. */
  protected forgetEphemerals(): void {
    this.ephemerals.clear()
  }

  /** One stable client watcher per caller watcher (the client de-duplicates by identity). */
  private wrap(watcher: ZkWatcher | undefined): ((ev: zookeeper.Event) => void) | undefined {
    if (!watcher) return undefined
    let w = this.wrappers.get(watcher)
    if (!w) {
      w = (ev: zookeeper.Event) => {
        try {
          watcher(toWatchEvent(ev))
        } catch {
          /* a watcher must not break the client's data handler */
        }
      }
      this.wrappers.set(watcher, w)
    }
    return w
  }
}
