# syntax=docker/dockerfile:1
# Production image: Bun runtime, production dependencies only, non-root.

# 1. dependencies, resolved exactly from the lock file (npm, like CI), without dev packages
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# postinstall applies our patches to dependencies (patch-package)
COPY patches ./patches
RUN npm ci --omit=dev --no-audit --no-fund

# 2. runtime
FROM oven/bun:1.4-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0
COPY --from=deps --chown=bun:bun /app/node_modules ./node_modules
COPY --chown=bun:bun package.json ./
COPY --chown=bun:bun src ./src
COPY --chown=bun:bun drizzle ./drizzle
USER bun
EXPOSE 8080
# fly.toml overrides this per process group (ROLE=gateway,worker / ROLE=coordinator)
CMD ["bun", "src/main.ts"]
