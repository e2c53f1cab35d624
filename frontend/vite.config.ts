// Vite build and dev-server configuration, plus the vitest settings (node environment).
// `npm run dev` proxies the API and port previews to DRYDOCK_URL (default http://127.0.0.1:8080).
import { defineConfig } from 'vitest/config';

const target = process.env.DRYDOCK_URL ?? 'http://127.0.0.1:8080';
const proxy = {
  '/api': { target, ws: true, changeOrigin: false },
  '/p': { target, ws: true, changeOrigin: false },
  '/healthz': { target },
};

export default defineConfig({
  build: {
    target: 'es2020',
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 700,
  },
  server: { proxy },
  preview: { proxy },
  test: {
    environment: 'node',
    include: ['tests/unit/**/*.test.ts'],
  },
});
