// The deployed pod's root filesystem is read-only: every path the components controller writes (Helm's
// temp kubeconfig/values under TMPDIR, Helm's cache/config/data homes in the state dir under TMPDIR, and
// HOME) must be on a writable volume, or every helm call fails with EROFS. Rendered from the chart itself.
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { renderManifests } from "../../scripts/generate-manifests.ts";

interface Container {
  env?: { name: string; value?: string }[];
  securityContext?: { readOnlyRootFilesystem?: boolean };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  containers: Container[];
  volumes?: { name: string; emptyDir?: { medium?: string; sizeLimit?: string } }[];
}

const under = (path: string, dir: string) => path === dir || path.startsWith(`${dir.replace(/\/$/, "")}/`);

describe("operator Deployment (helm chart)", () => {
  it("gives Helm a writable, memory-backed, size-limited /tmp, with TMPDIR and HOME on it", () => {
    const docs = parseAllDocuments(renderManifests()).map(
      (d) => d.toJS() as { kind?: string; spec?: unknown },
    );
    const deployment = docs.find((d) => d?.kind === "Deployment");
    expect(deployment).toBeDefined();
    const pod = (deployment?.spec as { template: { spec: PodSpec } } | undefined)?.template.spec as PodSpec;
    const operator = pod.containers[0] as Container;
    expect(operator.securityContext?.readOnlyRootFilesystem).toBe(true);
    const env = new Map((operator.env ?? []).map((e) => [e.name, e.value]));
    const writable = (path: string) =>
      (operator.volumeMounts ?? []).find((m) => !m.readOnly && under(path, m.mountPath));
    for (const name of ["TMPDIR", "HOME"]) {
      const path = env.get(name);
      expect(path, `${name} is set`).toBeDefined();
      const mount = writable(path as string);
      expect(mount, `${name}=${path} is on a writable mount`).toBeDefined();
      const volume = pod.volumes?.find((v) => v.name === mount?.name);
      // Memory: the 0600 kubeconfig and secret values never reach the node's disk.
      expect(volume?.emptyDir?.medium).toBe("Memory");
      expect(volume?.emptyDir?.sizeLimit).toMatch(/^\d+(Mi|Gi)$/);
    }
  });
});
