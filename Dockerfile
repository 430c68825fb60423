# syntax=docker/dockerfile:1

# Build stage: the full image has python3, make and g++ for compiling isolated-vm.
FROM node:20-bookworm AS build
WORKDIR /app
# The project's .npmrc points node-gyp at Debian's Node headers under /usr; in this image
# Node (and its headers) live under /usr/local, and the environment overrides the project file.
ENV npm_config_nodedir=/usr/local
# `prepare` builds during `npm ci`, so the sources must already be in place.
COPY . .
RUN npm ci --no-audit --no-fund \
 && npm run build \
 && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
# ALLOCATOR_ENV of proxy/node-flags.ts: glibc's allocator keeps less freed memory resident.
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536 MALLOC_TRIM_THRESHOLD_=131072
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Created before VOLUME so a fresh named volume inherits the node user's ownership.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 6432 6433
VOLUME ["/data"]
# The flags of proxy/node-flags.ts (isolated-vm needs the first; the second is for GC throughput).
ENTRYPOINT ["node", "--no-node-snapshot", "--max-semi-space-size=32", "dist/proxy/cli.js"]
CMD ["--listen", "0.0.0.0:6432", "--http", "0.0.0.0:6433", "--data-dir", "/data"]
