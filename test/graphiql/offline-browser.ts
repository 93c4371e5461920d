import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

// Debian's Chromium, driven by puppeteer-core, with no route off loopback: names other than 127.0.0.1
// do not resolve, and every request of the page to anywhere but the gateway is aborted and recorded.

export const CHROMIUM_HINT = 'Install Chromium to run it: `apt-get install -y chromium` (Debian; .ci/run does this), or set CHROMIUM_PATH to a Chromium or Chrome binary.';

/** The Chromium binary to drive: CHROMIUM_PATH, else Debian's package. */
export function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  return candidates.find((path): path is string => !!path && existsSync(path));
}

export interface OfflinePage {
  browser: Browser;
  page: Page;
  /** Requests the page tried to send anywhere but `origin` (all aborted). */
  outside: string[];
  /** Uncaught errors in the page. */
  pageErrors: string[];
  close(): Promise<void>;
}

export async function openOfflinePage(executablePath: string, origin: string): Promise<OfflinePage> {
  const browser = await puppeteer.launch({
    executablePath,
    headless: true,
    args: [
      // Tests run as root in CI containers, where Chromium's sandbox cannot start.
      '--no-sandbox',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-dev-shm-usage',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    const outside: string[] = [];
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(String(error)));
    await page.setRequestInterception(true);
    page.on('request', (request) => {
      const url = request.url();
      if (url.startsWith(`${origin}/`) || url.startsWith('data:') || url.startsWith('blob:')) return void request.continue();
      outside.push(url);
      void request.abort('internetdisconnected');
    });
    return { browser, page, outside, pageErrors, close: () => browser.close() };
  } catch (error) {
    await browser.close();
    throw error;
  }
}
