// Shared pieces of the browser tests: the server's address, the browser,
// screenshots, and small fixtures. Kept outside test/ so that node --test
// does not run it as a test file.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The Parley server under test, from PARLEY_URL (no trailing slash). */
export const BASE = (() => {
  const url = process.env.PARLEY_URL;
  if (!url) {
    throw new Error('PARLEY_URL is not set: point it at a running Parley server, e.g. PARLEY_URL=http://127.0.0.1:8080');
  }
  return url.replace(/\/+$/, '');
})();

export const SCREENSHOT_DIR = path.resolve(process.env.SCREENSHOT_DIR || path.join(here, '..', 'screenshots'));

/** How long any single wait may take before the test fails. */
export const WAIT = Number(process.env.PARLEY_WAIT_MS || 15000);

/**
 * Launches Debian's Chromium (no browser download: playwright-core only
 * drives it). CHROMIUM_PATH overrides the binary.
 */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A browser context with a page that records what must never happen:
 * dialogs (an injected alert would open one) and uncaught page errors.
 */
export async function openPage(browser, options = {}) {
  const context = await browser.newContext({ baseURL: BASE, viewport: { width: 1280, height: 800 }, ...options });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  const trouble = { dialogs: [], errors: [], csp: [] };
  // The client must live within its Content-Security-Policy.
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) trouble.csp.push(msg.text());
  });
  page.on('dialog', (d) => {
    trouble.dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('pageerror', (err) => trouble.errors.push(String(err && err.stack ? err.stack : err)));
  return { context, page, trouble };
}

export async function screenshot(page, name) {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`) });
}

/** A unique suffix for this run's usernames (3..32 of [a-z0-9_.-]). */
export const RUN = `${Date.now().toString(36).slice(-5)}${Math.floor(Math.random() * 1296).toString(36)}`;

/** A real PNG (w×h, two-colour diagonal), so the browser can decode it. */
export function png(w = 48, h = 32) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0; // filter: none
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      const on = x * h > y * w;
      raw[o] = on ? 79 : 14;
      raw[o + 1] = on ? 70 : 165;
      raw[o + 2] = on ? 229 : 233;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Escapes text for use inside a RegExp. */
export function re(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
