// Builds the terminal into the Python package (src/perpetua/web/dist), where the gateway serves
// it at "/": hashed names under assets/ (cached for a year), the shell files beside index.html.
// No inline script or style anywhere, so the served Content-Security-Policy stays strict.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: "../src/perpetua/web/dist",
    emptyOutDir: true,
    assetsDir: "assets",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: true,
  },
  server: {
    // `npx vite` against a running venue (make run): the API and WebSocket are proxied.
    proxy: {
      "/api": "http://127.0.0.1:8000",
      "/realtime": { target: "ws://127.0.0.1:8000", ws: true },
    },
  },
});
