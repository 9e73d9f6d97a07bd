import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { defineConfig, type Plugin } from "vite";

// Swagger UI for the gateway's /docs, copied from the pinned swagger-ui-dist into a folder named by its
// version (served with the assets' year-long cache), so /docs needs no network either.
const swaggerVersion = (JSON.parse(readFileSync("node_modules/swagger-ui-dist/package.json", "utf8")) as { version: string }).version;

function swaggerUi(): Plugin {
  return {
    name: "swagger-ui-dist",
    apply: "build",
    closeBundle() {
      const out = resolve("dist/assets", `swagger-ui-${swaggerVersion}`);
      mkdirSync(out, { recursive: true });
      for (const file of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"]) {
        copyFileSync(resolve("node_modules/swagger-ui-dist", file), resolve(out, file));
      }
    },
  };
}

// Hashed file names under /assets (served with a long cache); everything bundled, nothing from a CDN.
// Two pages: the dashboard (index.html) and GraphiQL (graphiql.html, served at GET /graphql for a browser),
// so React and GraphiQL load only on the IDE's page.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    assetsDir: "assets",
    sourcemap: false,
    manifest: true, // dist/.vite/manifest.json: which files each page loads (bench/web.py sums them)
    chunkSizeWarningLimit: 1000, // GraphiQL's page (React, GraphiQL, graphql-js): 830 KB, 270 KB gzip
    rollupOptions: {
      input: { index: resolve("index.html"), graphiql: resolve("graphiql.html") },
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning); // Radix's "use client", meant for SSR
      },
    },
  },
  plugins: [swaggerUi()],
});
