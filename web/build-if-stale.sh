#!/usr/bin/env bash
# Build the dashboard into web/dist unless it is built from these very sources: `npm ci` when
# node_modules does not match package-lock.json, `npm run build` when the sources' content hash differs
# from the one recorded in dist/.source-hash. Needs Node.js 20+ and npm (a registry for npm ci only).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ ! -f node_modules/.lock-hash || "$(cat node_modules/.lock-hash)" != "$lock_hash" ]]; then
    echo "web: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock_hash" >node_modules/.lock-hash
fi

source_hash="$(find package.json package-lock.json index.html graphiql.html tsconfig.json vite.config.ts src -type f -print0 \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [[ ! -f dist/.source-hash || "$(cat dist/.source-hash)" != "$source_hash" ]]; then
    echo "web: npm run build"
    npm run build --silent
    echo "$source_hash" >dist/.source-hash
fi
