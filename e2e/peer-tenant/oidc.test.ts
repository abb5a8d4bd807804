// Real logins: a control plane of its own whose kube-apiserver trusts a real OpenID provider through
// structured authentication configuration (claims preferred_username and groups, as the seed's
// Keycloak), the operator told how that cluster names people, and the isolation matrix run as alice
// with an ID token from the provider's authorization code flow.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, type KubeObject, type Manager } from "../../src/runtime/index.ts";
import { type ControlPlane, startControlPlane } from "../harness/control-plane.ts";
import { waitFor } from "../harness/wait.ts";
import { isolationMatrix } from "./matrix.ts";
import { CLIENT_ID, type OidcProvider, startOidcProvider } from "./oidc-provider.ts";
import { startPeerTenantOperator } from "./operator.ts";
import { RUN, tenantSpec, tenants, waitReady } from "./tenant-fixtures.ts";

/** The prefixes this cluster's authentication puts before OIDC names (claimMappings.*.prefix). */
const PREFIX = "oidc:";

let idp: OidcProvider;
let cp: ControlPlane;
let manager: Manager | undefined;

function tokenKubeConfig(token: string): KubeConfig {
  const admin = cp.kubeConfig();
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: "oidc", token }],
    contexts: [{ name: "oidc", cluster: cluster.name, user: "oidc" }],
    currentContext: "oidc",
  });
  return kc;
}

async function loginAs(user: string, groups: string[]): Promise<KubeConfig> {
  return tokenKubeConfig(await idp.login(user, groups));
}

beforeAll(async () => {
  idp = await startOidcProvider();
  const dir = await import("node:fs/promises").then((fs) =>
    fs.mkdtemp(join(process.env.TMPDIR ?? "/tmp", "oidc-")),
  );
  const config = join(dir, "authentication.yaml");
  await writeFile(
    config,
    JSON.stringify({
      apiVersion: "apiserver.config.k8s.io/v1",
      kind: "AuthenticationConfiguration",
      jwt: [
        {
          issuer: { url: idp.issuer, audiences: [CLIENT_ID], certificateAuthority: idp.caPem },
          claimMappings: {
            username: { claim: "preferred_username", prefix: PREFIX },
            groups: { claim: "groups", prefix: PREFIX },
          },
        },
      ],
    }),
  );
  cp = await startControlPlane({ name: "oidc", extraApiServerArgs: [`--authentication-config=${config}`] });
  manager = await startPeerTenantOperator(cp.kubeConfig(), {
    ownerNaming: { usernamePrefix: PREFIX, groupsPrefix: PREFIX },
  });
  // The API server fetches the issuer's discovery document and keys in the background after start.
  const probe = await loginAs(`probe-${RUN}`, []);
  await waitFor(
    "the API server to accept the provider's tokens",
    () => whoAmI(probe).then((u) => (u.username === `${PREFIX}probe-${RUN}` ? u : undefined)),
    60_000,
    500,
  );
});

afterAll(async () => {
  await manager?.stop();
  await cp?.stop();
  await idp?.stop();
});

/** What the API server makes of a request's credentials (SelfSubjectReview). */
async function whoAmI(kc: KubeConfig): Promise<{ username: string; groups: string[] }> {
  const review = await new KubeClient(kc).create<
    KubeObject & { status?: { userInfo?: { username?: string; groups?: string[] } } }
  >({
    apiVersion: "authentication.k8s.io/v1",
    kind: "SelfSubjectReview",
    metadata: {},
  });
  return { username: review.status?.userInfo?.username ?? "", groups: review.status?.userInfo?.groups ?? [] };
}

describe("OIDC logins", () => {
  it("binds owners exactly as the API server names a logged-in user", async () => {
    const name = `olga-${RUN}`;
    await tenants(cp.kubeConfig()).create(name, tenantSpec(name));
    await waitReady(cp.kubeConfig(), name);
    const seen = await whoAmI(await loginAs(name, [`peers-${name}`]));
    expect(seen.username).toBe(`${PREFIX}${name}`);
    expect(seen.groups).toContain(`${PREFIX}peers-${name}`);
    const binding = await new KubeClient(cp.kubeConfig()).get<
      KubeObject & { subjects?: { kind: string; name: string }[] }
    >(
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding" },
      { namespace: `peers-${name}`, name: "tenant-owners" },
    );
    const subjects = (binding.subjects ?? []).map((s) => `${s.kind}:${s.name}`);
    expect(subjects).toContain(`User:${seen.username}`);
    expect(subjects).toContain(`Group:${PREFIX}peers-${name}`);
  });
});

isolationMatrix({
  login: "OIDC ID tokens",
  admin: () => cp.kubeConfig(),
  loginAs,
  suffix: `o${RUN}`,
});
