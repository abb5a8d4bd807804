// Installs the generated CRDs with server-side apply and waits until the apiserver serves them.
import {
  ApiextensionsV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { KINDS } from "./index.ts";
import { type AnyKind, customResourceDefinition } from "./kind.ts";

export const FIELD_MANAGER = "homelab-operator";

export class CRDInstallError extends Error {
  readonly crd: string;
  constructor(crd: string, message: string, options?: { cause?: unknown }) {
    super(`CRD ${crd}: ${message}`, options);
    this.name = "CRDInstallError";
    this.crd = crd;
  }
}

export interface InstallOptions {
  /** How long to wait for each CRD to become Established (default 60 s). */
  timeoutMs?: number;
  pollMs?: number;
  kinds?: readonly AnyKind[];
}

function conditionStatus(crd: V1CustomResourceDefinition, type: string) {
  return crd.status?.conditions?.find((c) => c.type === type);
}

async function waitEstablished(api: ApiextensionsV1Api, name: string, timeoutMs: number, pollMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const crd = await api.readCustomResourceDefinition({ name });
    if (conditionStatus(crd, "Established")?.status === "True") return;
    // NamesAccepted=False never resolves by waiting (e.g. a short name another CRD already claims).
    const names = conditionStatus(crd, "NamesAccepted");
    if (names?.status === "False")
      throw new CRDInstallError(name, `names not accepted: ${names.message ?? ""}`);
    if (Date.now() >= deadline) {
      throw new CRDInstallError(name, `not Established after ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * Discovery catches up with an Established CRD a moment later; clients that resolve kinds through
 * discovery (kubectl, KubernetesObjectApi) fail with "resource not found" until it has.
 */
async function waitDiscoverable(
  kubeConfig: KubeConfig,
  kinds: readonly AnyKind[],
  timeoutMs: number,
  pollMs: number,
) {
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const deadline = Date.now() + timeoutMs;
  for (const { group, version } of new Map(kinds.map((k) => [k.apiVersion, k])).values()) {
    const wanted = kinds.filter((k) => k.group === group && k.version === version).map((k) => k.plural);
    for (;;) {
      const served = await custom.getAPIResources({ group, version }).then(
        (list) => new Set(list.resources.map((r) => r.name)),
        () => new Set<string>(),
      );
      const missing = wanted.filter((plural) => !served.has(plural));
      if (missing.length === 0) break;
      if (Date.now() >= deadline) {
        throw new CRDInstallError(`${missing[0]}.${group}`, `not in API discovery after ${timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }
}

/**
 * Server-side applies every CRD (field manager homelab-operator, forcing conflicts: the operator owns its
 * CRDs) and resolves once each is Established and listed in API discovery, i.e. its kind can be
 * created and watched by any client.
 */
export async function installCRDs(kubeConfig: KubeConfig, options: InstallOptions = {}): Promise<void> {
  const extensions = kubeConfig.makeApiClient(ApiextensionsV1Api);
  const kinds = options.kinds ?? KINDS;
  for (const kind of kinds) {
    const crd = customResourceDefinition(kind);
    try {
      // Not KubernetesObjectApi.patch: it re-serializes known kinds through client-node's typed models,
      // which silently drop keys like x-kubernetes-list-type from a plain object (the apiserver then
      // rejects the transition rules under nodes as uncorrelatable). The typed patch call sends the body
      // as is; the header makes it an apply patch.
      await extensions.patchCustomResourceDefinition(
        { name: crd.metadata.name, body: crd, fieldManager: FIELD_MANAGER, force: true },
        setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply),
      );
    } catch (error) {
      throw new CRDInstallError(crd.metadata.name, `apply failed: ${describeApiError(error)}`, {
        cause: error,
      });
    }
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  const pollMs = options.pollMs ?? 100;
  await Promise.all(kinds.map((kind) => waitEstablished(extensions, kind.crdName, timeoutMs, pollMs)));
  await waitDiscoverable(kubeConfig, kinds, timeoutMs, pollMs);
}

/** The apiserver's Status message from a client-node ApiException, else the error's own message. */
export function describeApiError(error: unknown): string {
  if (typeof error === "object" && error !== null && "body" in error) {
    const body = (error as { body: unknown }).body;
    const parsed = typeof body === "string" ? safeJSON(body) : body;
    if (typeof parsed === "object" && parsed !== null && "message" in parsed) {
      return String((parsed as { message: unknown }).message);
    }
  }
  return error instanceof Error ? error.message : String(error);
}

function safeJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
