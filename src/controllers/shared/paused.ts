/**
 * Set to "true" on any object of ours to stop its reconciles (Cluster API's `cluster.x-k8s.io/paused`), e.g.
 * while management state moves to another cluster. Every controller passes it as `pausedAnnotation`; the
 * runtime then skips the object without writing anything, and its removal triggers a reconcile.
 */
export const PAUSED_ANNOTATION = "homelab.shdr.ch/paused";
