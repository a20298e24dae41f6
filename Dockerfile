# syntax=docker/dockerfile:1
# Gatehouse container image (docs/deploy.md). Multi-stage: compilers and dev dependencies stay in
# the build stage; the runtime stage is node:20 slim, runs as the unprivileged `node` user (uid 1000).

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 builds from source when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` compiles the sources, which are not copied yet; native modules are
# built explicitly below.
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --from=build --chown=root:root /app/package.json ./package.json
# The data dir (audit key, authorization-server keys, secrets store): owner-only, owned by `node`.
RUN mkdir -p /data /etc/gatehouse && chown 1000:1000 /data && chmod 0700 /data
USER 1000:1000
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node flags: src/cli/runtime-flags.ts (a larger young generation: fewer scavenges per call).
ENTRYPOINT ["node", "--max-semi-space-size=64", "dist/cli/index.js"]
CMD ["start", "--config", "/etc/gatehouse/gatehouse.yaml", "--data-dir", "/data"]
