# The operator image: Node 24 runs the TypeScript sources directly (type stripping), no build step.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
# Local mode (the embedded control plane) needs the e2e harness; in a cluster it is never loaded.
USER 65532:65532
ENTRYPOINT ["node", "src/main.ts"]
