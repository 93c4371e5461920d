import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postReport, startGateway, type TestGateway } from '../helpers/gateway';
import { createToken } from '../helpers/tokens';
import { CHROMIUM_HINT, findChromium, openOfflinePage, type OfflinePage } from './offline-browser';

// GraphiQL as an operator meets it on a closed network: Debian's Chromium, nothing but the gateway
// reachable. Without Chromium the test is skipped with how to install it, unless CI is set.

const chromium = findChromium();
if (!chromium && !process.env.CI) console.warn(`test/graphiql: skipped, no Chromium found. ${CHROMIUM_HINT}`);

const DEADLINE_MS = 20_000;

/** The text Monaco shows in the editor inside `selector` (its visible lines, top to bottom); runs in the page. */
function shownText(selector: string): string {
  const element = document.querySelector(selector);
  if (!element) return '';
  return [...element.querySelectorAll('.view-line')]
    .map((line) => ({ top: parseFloat((line as HTMLElement).style.top || '0'), text: (line.textContent ?? '').replace(/\u00a0/g, ' ') }))
    .sort((a, b) => a.top - b.top)
    .map((line) => line.text)
    .join('\n');
}

async function editorText(browser: OfflinePage, selector: string): Promise<string> {
  return browser.page.evaluate(shownText, selector);
}

/** Waits until the editor inside `selector` shows text matching `pattern` (wrapped lines joined by a space); returns that text. */
async function waitForEditorText(browser: OfflinePage, selector: string, pattern: RegExp): Promise<string> {
  try {
    await browser.page.waitForFunction(
      (shown: string, target: string, source: string, flags: string) => new RegExp(source, flags).test(new Function(`return (${shown})`)()(target).replace(/\s+/g, ' ')),
      { timeout: DEADLINE_MS, polling: 100 },
      shownText.toString(),
      selector,
      pattern.source,
      pattern.flags,
    );
  } catch (error) {
    throw new Error(`${selector} did not show ${pattern} within ${DEADLINE_MS} ms; it shows:\n${await editorText(browser, selector)}`, { cause: error });
  }
  return editorText(browser, selector);
}

/** A paste into the focused element, as the clipboard would deliver it. */
async function paste(browser: OfflinePage, text: string): Promise<void> {
  await browser.page.evaluate((value) => {
    const data = new DataTransfer();
    data.setData('text/plain', value);
    document.activeElement!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
  }, text);
}

/** The user selects all in the Headers tab and pastes `text` over it. */
async function replaceHeaders(browser: OfflinePage, selector: string, text: string): Promise<void> {
  await browser.page.click(selector);
  await browser.page.keyboard.down('Control');
  await browser.page.keyboard.press('a');
  await browser.page.keyboard.up('Control');
  await paste(browser, text);
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  await waitForEditorText(browser, selector, new RegExp(`^${escaped}$`));
}

describe.runIf(chromium || process.env.CI)('GraphiQL in Chromium with no route to the internet', () => {
  let gateway: TestGateway;
  let browser: OfflinePage;

  beforeAll(async () => {
    if (!chromium) throw new Error(`CI is set and no Chromium was found. ${CHROMIUM_HINT}`);
    gateway = await startGateway();
    browser = await openOfflinePage(chromium, gateway.url);
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('shows the example query, takes a pasted token, runs the query and fills Docs', async () => {
    const stored = await postReport(gateway.url, {
      mq_license_key: 'GRAPHIQL-BOX',
      media_devices: [{ media_device_id: 'door', media_device_status: 'offline', media_device_type: 'rtsp', media_device_name: 'door camera' }],
    });
    expect(stored.status, stored.text).toBe(200);
    const { token } = await createToken(gateway.url, 'viewer', 'graphiql test');

    const { page } = browser;
    await page.goto(`${gateway.url}/graphql`, { waitUntil: 'domcontentloaded', timeout: DEADLINE_MS });
    await page.waitForSelector('.graphiql-query-editor .view-line', { timeout: DEADLINE_MS });
    await waitForEditorText(browser, '.graphiql-query-editor', /query OfflineDevices/);
    // The token step: the Headers tab is open and marks the token's place; nothing was refused yet.
    const headersEditor = 'section.graphiql-editor-tool .graphiql-editor:not(.hidden)';
    await waitForEditorText(browser, headersEditor, /"Authorization": "Bearer <paste a token: npm run token -- create/);
    expect(await editorText(browser, '.graphiql-response')).toBe('');

    // Docs waits for a token instead of failing.
    await page.click('[aria-label="Show Documentation Explorer"]');
    await page.waitForSelector('.graphiql-doc-explorer', { timeout: DEADLINE_MS });
    expect(await page.$eval('.graphiql-doc-explorer', (e) => e.textContent)).not.toContain('Error fetching schema');

    // Running before a token is given says where it goes.
    await page.click('.graphiql-execute-button');
    await waitForEditorText(browser, '.graphiql-response', /Paste an API token in the Headers tab/);

    // A mistyped token is refused when the query runs; Docs keeps waiting for a good one.
    await replaceHeaders(browser, headersEditor, `{"Authorization": "Bearer ${token}x"}`);
    await page.click('.graphiql-execute-button');
    await waitForEditorText(browser, '.graphiql-response', /The API token is not valid/);
    expect(await page.$eval('.graphiql-doc-explorer', (e) => e.textContent)).not.toContain('Error fetching schema');

    await replaceHeaders(browser, headersEditor, `{"Authorization": "Bearer ${token}"}`);

    await page.waitForFunction(() => /Root Types/.test(document.querySelector('.graphiql-doc-explorer')?.textContent ?? ''), { timeout: DEADLINE_MS });
    expect(await page.$eval('.graphiql-doc-explorer', (e) => e.textContent)).toMatch(/query:\s*Query/);

    await page.click('.graphiql-execute-button');
    const result = await waitForEditorText(browser, '.graphiql-response', /GRAPHIQL-BOX/);
    expect(result).toMatch(/"totalCount": 1/);
    expect(result).toMatch(/"name": "door camera"/);
    expect(result).not.toMatch(/"errors"/);

    expect(browser.outside).toEqual([]);
    expect(browser.pageErrors).toEqual([]);
  });
});
