import { defineConfig } from "vite";

// Hashed file names under /assets (served with a long cache); everything bundled, nothing from a CDN.
export default defineConfig({
  base: "/",
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false },
});
