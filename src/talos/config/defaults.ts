/** The Talos release whose config contract we emit by default; e2e/talosctl/versions.env pins the same. */
export const DEFAULT_TALOS_VERSION = "v1.13.0";
