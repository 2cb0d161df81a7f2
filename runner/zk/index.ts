/** The ZooKeeper half of bosun's runtime: session, registry, election (every export named). */
export { ZkSession, type SessionPhase, type ZkSessionOptions } from './session.js'
export { ZkOperations, type CallOptions, type SessionStats, type ZkOp } from './operations.js'
export { ZkRegistry, type RegistryState, type SendFn, type ZkRegistryOptions } from './registry.js'
export { ZkElection, type ElectionState, type ZkElectionOptions } from './election.js'
export { Candidacy, type CandidateState, type ElectionHooks } from './candidate.js'
export {
  ChildrenCache,
  type ChildrenCacheHooks,
  type ChildrenCacheOptions,
  type ChildrenCacheState,
} from './children-cache.js'
export { LeaderCache } from './leader-cache.js'
export {
  NO_OWNER,
  ZK_CODES,
  aclFor,
  assertNodeName,
  isSessionGone,
  isUncertain,
  isZkError,
  zkCodeOf,
  type CreateModeName,
  type WatchEventType,
  type ZkCodeName,
  type ZkData,
  type ZkStat,
  type ZkWatchEvent,
  type ZkWatcher,
} from './primitives.js'
export {
  electionSequence,
  encodeCandidate,
  encodeEpoch,
  encodeRegistration,
  parseEpoch,
  parseLeader,
  parseRegistration,
  sortElectionNodes,
  type Identity,
} from './records.js'
export { NEWER_ZK_CODES, createClientException, isClientPatched, type ZkClientException } from './client-patch.js'
