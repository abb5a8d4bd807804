export { ItemBackoff, JitteredBackoff } from "./backoff.ts";
export {
  type CallOptions,
  type DeleteOptions,
  type DeletePreconditions,
  deleteExactly,
  FIELD_MANAGER,
  gvkOf,
  KubeClient,
  type ListResult,
  type PatchType,
  type WatchEvent,
} from "./client.ts";
export {
  type ClusterAccessor,
  ClusterCache,
  type ClusterCacheOptions,
  ClusterNotConnectedError,
  type ClusterWatch,
  kubeconfigFromSecret,
} from "./cluster-cache.ts";
export {
  type Condition,
  type ConditionInput,
  conditionsEqual,
  findCondition,
  isConditionTrue,
  removeCondition,
  setCondition,
} from "./conditions.ts";
export type {
  CacheReader,
  ClusterAccess,
  Controller,
  ControllerSpec,
  OwnsSpec,
  ReconcileContext,
  ReconcileRequest,
  ReconcileResult,
  WatchSpec,
} from "./controller.ts";
export {
  ApiError,
  describeError,
  isAlreadyExists,
  isConflict,
  isGone,
  isNotFound,
  isTerminal,
  KindNotServedError,
  TerminalError,
} from "./errors.ts";
export { type EventInput, EventRecorder } from "./events.ts";
export { type Fence, FencingError, fenceVerdict, isFencingError } from "./fencing.ts";
export { addFinalizer, hasFinalizer, removeFinalizer } from "./finalizers.ts";
export {
  composeTransforms,
  type EventHandler,
  Informer,
  InformerFactory,
  type InformerSelection,
  labelIndex,
  stripManagedFields,
  type TransformFunc,
} from "./informer.ts";
export {
  inClusterConfig,
  loadKubeconfigFile,
  parseKubeconfig,
  RestConfig,
  UnsupportedKubeconfigError,
} from "./kubeconfig.ts";
export { type LeaderElectionConfig, LeaderElector } from "./leader-election.ts";
export { createLogger, type Logger, redact } from "./logger.ts";
export { LeaderElectionLostError, Manager, type ManagerOptions } from "./manager.ts";
export { RuntimeMetrics } from "./metrics.ts";
export {
  type GroupVersionKind,
  type KubeObject,
  keyOf,
  type ObjectKey,
  type ObjectMeta,
  type OwnerReference,
  objectKeyOf,
  parseKey,
} from "./object.ts";
export { controllerReference, ownerKeys } from "./owners.ts";
export { specOrMetadataChanged } from "./predicates.ts";
export { WorkQueue } from "./queue.ts";
