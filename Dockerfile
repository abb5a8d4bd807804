# The operator image: tsc's JavaScript (scripts/build.ts, `npm run build`), run as `node dist/main.js`.
# Type stripping (`node src/main.ts`, what `npm start` does) would keep Node's WebAssembly TypeScript
# parser in the process for good, ~29 MiB RSS at start (README, Benchmarks); the image does not pay it.

# The pinned Helm v4 CLI the components controller drives, built from its Go module with the same pin and
# flags as deploy/helm/build-helm.sh (keep HELM_VERSION equal to that script's).
FROM golang:1.26-bookworm AS helm
ARG HELM_VERSION=v4.3.1
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION}" \
      "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}"

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# The build needs the devDependencies (typescript); only its output goes into the image.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN node scripts/build.ts

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# Memory settings, measured with bench/peer-tenant (which runs the operator with these same lines;
# figures in the README's Benchmarks):
# - a small young generation and an old-space cap make V8 collect before it grows: with V8's defaults on a
#   large machine the operator held 436 MiB RSS at 1000 tenants (heap 246 MiB used, 59 MiB of it live);
# - --no-opt --no-maglev: no optimizing compilers (Ignition and Sparkplug only): 26 MiB less peak RSS at
#   200 tenants (128 -> 102 MiB, together with --optimize-for-size), 8 MiB of it pages of the node binary
#   (the compilers' own code) no longer touched; the price is CPU, ~1.7x CPU time per reconcile;
# - --optimize-for-size: V8's smaller heap growth steps (alone: ~3 MiB less partway through a 200-tenant
#   run, not run to the end).
ENV NODE_OPTIONS="--max-semi-space-size=2 --max-old-space-size=160 --no-opt --no-maglev --optimize-for-size"
# glibc gives each thread that allocates (V8's GC helpers, libuv's pool) an arena of its own, each keeping
# its own free memory; two arenas share it instead. In every run of the README's figures for dist/main.js;
# its share alone was not measured.
ENV MALLOC_ARENA_MAX=2
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY --from=helm /out/helm /usr/local/bin/helm
ENV HOMELAB_OPERATOR_HELM=/usr/local/bin/helm
# Local mode (the embedded control plane) is not in the image: it needs the checkout's build scripts and Go.
USER 65532:65532
ENTRYPOINT ["node", "dist/main.js"]
