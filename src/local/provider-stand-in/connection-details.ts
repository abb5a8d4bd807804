// The keys each real provider publishes into a managed resource's connection Secret, so apps written
// against the stand-in read the same keys in production:
// - provider-sql Role: username, password, endpoint, port (pkg/clients/postgresql/postgresql.go).
//   The Database publishes nothing.
// - provider-keycloak openidclient Client: clientID, clientSecret, serviceAccountUserId
//   (AdditionalConnectionDetailsFn, since v2.21.0) beside upjet's raw attribute.<name> of the sensitive
//   client_secret.
// - provider-upjet-aws S3 Bucket: upjet publishes only sensitive Terraform attributes and a bucket has
//   none, so the Secret is written but empty; bucket name and endpoint come to the app as env instead.
import { randomBytes } from "node:crypto";

export interface SqlEndpoint {
  endpoint: string;
  port: string;
}

export function generatedPassword(): string {
  return randomBytes(24).toString("base64url");
}

export function roleConnectionDetails(
  username: string,
  password: string,
  sql: SqlEndpoint,
): Record<string, string> {
  return { username, password, endpoint: sql.endpoint, port: sql.port };
}

export function clientConnectionDetails(
  clientId: string,
  confidential: boolean,
  secret: string,
  serviceAccountUserId: string | undefined,
): Record<string, string> {
  const out: Record<string, string> = { clientID: clientId };
  if (confidential) {
    out.clientSecret = secret;
    out["attribute.client_secret"] = secret;
  }
  if (serviceAccountUserId) out.serviceAccountUserId = serviceAccountUserId;
  return out;
}
