/**
 * Create a JetStream key-value bucket (first start) or bind to it: the one way bosun's buckets
 * (schedules, limit overrides, rate windows) are opened. @nats-io/kv's `Kvm.create` looks the stream
 * up and adds it when missing; when several processes of a fresh cluster do that at once, nats-server
 * answers all but one with "subjects overlap with an existing stream" or "already in use". The bucket
 * then exists, so the create is tried once more and binds to it; a stream of another name that owns the
 * bucket's subjects still fails. Retries while JetStream is briefly away (store-codec.ts).
 */
import { Kvm, type KV, type KvOptions } from '@nats-io/kv'
import type { NatsConnection } from '@nats-io/transport-node'
import { isCreatedConcurrently } from '../runner/jetstream-stream.js'
import { untilStoreAnswers } from './store-codec.js'

export async function openKvBucket(
  nc: NatsConnection,
  bucket: string,
  opts: Partial<KvOptions>,
  o: { what: string; timeoutMs: number },
): Promise<KV> {
  const create = () => new Kvm(nc).create(bucket, opts)
  // After a lost creation race the bucket exists: the second create finds it and binds.
  const open = async () => {
    try {
      return await create()
    } catch (err) {
      if (!isCreatedConcurrently(err)) throw err
      return create()
    }
  }
  return untilStoreAnswers(open, Date.now() + o.timeoutMs, o.what)
}
