// A real OpenID Connect provider on loopback (panva's oidc-provider, OpenID Certified), serving TLS with
// a throwaway CA, and a login that walks its authorization code flow the way a browser would: GET /auth,
// the provider's own development login and consent screens (devInteractions) answered by form posts,
// then the code exchanged at /token for an ID token. No token is minted outside the provider.
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer, request as httpsRequest, type Server } from "node:https";
import Provider from "oidc-provider";
import { freePort } from "../../src/local/control-plane/ports.ts";
import { createCA, issueCert } from "../../src/pki/index.ts";

export const CLIENT_ID = "kubectl";
const CLIENT_SECRET = randomBytes(16).toString("hex");
const REDIRECT_URI = "http://127.0.0.1:8000/callback"; // never called: the code is read off the redirect

export interface OidcProvider {
  issuer: string;
  caPem: string;
  /** Runs the authorization code flow as `user` (whose `groups` claim is `groups`); returns the ID token. */
  login(user: string, groups: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startOidcProvider(): Promise<OidcProvider> {
  const port = await freePort();
  const issuer = `https://127.0.0.1:${port}`;
  const ca = createCA({ subject: { commonName: "e2e-oidc-ca" }, validityDays: 1 });
  const serving = issueCert(ca, {
    subject: { commonName: "oidc-provider" },
    validityDays: 1,
    ipAddresses: ["127.0.0.1"],
    keyUsage: ["digitalSignature", "keyEncipherment"],
    extKeyUsage: ["serverAuth"],
  });
  const groupsOf = new Map<string, string[]>();
  const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [REDIRECT_URI],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_post",
      },
    ],
    jwks: { keys: [{ ...signingKey, kid: "e2e", use: "sig", alg: "RS256" }] },
    cookies: { keys: [randomBytes(16).toString("hex")] },
    claims: { openid: ["sub"], profile: ["preferred_username"], groups: ["groups"] },
    // Keycloak puts preferred_username and groups in the ID token; kube-apiserver reads them there.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, preferred_username: sub, groups: groupsOf.get(sub) ?? [] };
        },
      };
    },
  });
  const server: Server = createServer({ cert: serving.certPem, key: serving.keyPem }, provider.callback());
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));

  const login = async (user: string, groups: string[]): Promise<string> => {
    groupsOf.set(user, groups);
    const browser = new Browser(ca.certPem);
    const verifier = randomBytes(32).toString("base64url");
    const auth = new URL(`${issuer}/auth`);
    auth.search = new URLSearchParams({
      client_id: CLIENT_ID,
      response_type: "code",
      scope: "openid profile groups",
      redirect_uri: REDIRECT_URI,
      state: randomBytes(8).toString("hex"),
      nonce: randomBytes(8).toString("hex"),
      code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
    }).toString();
    // Follow redirects, answering the login and then the consent screen, until the client's redirect.
    let next = auth.toString();
    for (let step = 0; step < 12; step++) {
      if (next.startsWith(REDIRECT_URI)) break;
      const page = await browser.get(next);
      if (page.location) {
        next = new URL(page.location, next).toString();
        continue;
      }
      const uid = /\/interaction\/([^/?#]+)/.exec(next)?.[1];
      if (!uid) throw new Error(`unexpected page at ${next}: ${page.status} ${page.body.slice(0, 200)}`);
      const prompt = /name="login"/.test(page.body) ? "login" : "consent";
      const form: Record<string, string> =
        prompt === "login" ? { prompt, login: user, password: "unused" } : { prompt };
      const answer = await browser.post(`${issuer}/interaction/${uid}`, form);
      if (!answer.location)
        throw new Error(`${prompt} was not accepted: ${answer.status} ${answer.body.slice(0, 200)}`);
      next = new URL(answer.location, next).toString();
    }
    const callback = new URL(next);
    const code = callback.searchParams.get("code");
    if (!code) throw new Error(`no authorization code in ${next}`);
    const token = await browser.post(`${issuer}/token`, {
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      code_verifier: verifier,
    });
    const idToken = (JSON.parse(token.body) as { id_token?: string }).id_token;
    if (!idToken)
      throw new Error(`token endpoint gave no id_token: ${token.status} ${token.body.slice(0, 200)}`);
    return idToken;
  };

  return {
    issuer,
    caPem: ca.certPem,
    login,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Just enough of a browser: TLS trusting one CA, a cookie jar, no automatic redirects. */
class Browser {
  private readonly ca: string;
  private readonly cookies = new Map<string, string>();

  constructor(ca: string) {
    this.ca = ca;
  }

  get(url: string) {
    return this.send("GET", url);
  }

  post(url: string, form: Record<string, string>) {
    return this.send("POST", url, new URLSearchParams(form).toString());
  }

  private send(method: string, url: string, body?: string) {
    return new Promise<{ status: number; location?: string; body: string }>((resolve, reject) => {
      const headers: Record<string, string> = {};
      if (this.cookies.size > 0) {
        headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
      }
      if (body !== undefined) {
        headers["content-type"] = "application/x-www-form-urlencoded";
        headers["content-length"] = String(Buffer.byteLength(body));
      }
      const req = httpsRequest(url, { method, headers, ca: this.ca }, (res) => {
        for (const c of res.headers["set-cookie"] ?? []) {
          const [pair] = c.split(";");
          const i = pair!.indexOf("=");
          this.cookies.set(pair!.slice(0, i), pair!.slice(i + 1));
        }
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            ...(res.headers.location ? { location: res.headers.location } : {}),
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      });
      req.on("error", reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }
}
