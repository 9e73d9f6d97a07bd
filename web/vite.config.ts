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
export default defineConfig({
  base: "/",
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false },
  plugins: [swaggerUi()],
});
