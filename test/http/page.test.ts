/**
 * The page at `/` in a real browser: Debian's chromium, headless, driven by puppeteer-core (no
 * browser is downloaded): a table now and as of a moment, its lineage picture, an execution's record. Without chromium this test fails; it never skips. With
 * UPDATE_SCREENSHOTS=1 it writes the README's picture of the page.
 */
import { accessSync, constants, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import puppeteer, { type Browser } from 'puppeteer-core';
import { useTarget } from '../support/proxy-matrix.js';
import { httpBase } from './http-client.js';

const SCREENSHOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/http-page.png');

function chromium(): string {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    for (const name of ['chromium', 'chromium-browser']) {
      const file = path.join(dir, name);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not here
      }
    }
  }
  throw new Error('chromium is not installed (Debian: apt-get install chromium); the page test needs it');
}

describe('the page at / in chromium [embedded, with the demo]', () => {
  // A new data directory (not the run's template copy): the demo is seeded only into a new database.
  const t = useTarget('embedded', [], () => ({ http: { host: '127.0.0.1', port: 0 }, demo: true, dataDir: mkdtempSync(path.join(tmpdir(), 'pp-page-')) }));
  let browser: Browser;

  beforeAll(async () => {
    await t.proxy.registryLoaded;
    // --no-sandbox: the test may run as root, where chromium's sandbox refuses to start.
    browser = await puppeteer.launch({ executablePath: chromium(), headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('shows a table\'s rows beside its lineage picture, and an execution\'s record on a click', async () => {
    const page = await browser.newPage();
    await page.setViewport({ width: 1200, height: 700 });
    await page.goto(`${httpBase(t)}/`);
    await page.type('#table', 'public.customers');
    await page.click('button[type=submit]');
    await page.waitForSelector('#lineage svg g[id^="execution:"]', { timeout: 20_000 });
    const cells = await page.$$eval('#rows tr', (rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));
    expect(cells[0]).toEqual(['id', 'name', 'email', 'phone', 'iban', 'birth_date']);
    expect(cells.length).toBeGreaterThan(1);
    expect(cells[1]).toEqual(expect.arrayContaining(['1', 'Ada Lovelace', 'ad***@analytical.example']));
    const transforms = await page.$$eval('#lineage svg g.node text', (ts) => ts.map((x) => x.textContent));
    expect(transforms).toEqual(expect.arrayContaining(['mask_email v1', 'mask_iban v1']));
    await page.click('#lineage svg g[id^="execution:"] polygon');
    // Strings: the test is compiled without the DOM's types; chromium evaluates them.
    await page.waitForFunction(`document.getElementById('execution').textContent.includes('"transform_name"')`, { timeout: 10_000 });
    const record = JSON.parse((await page.$eval('#execution', (e) => e.textContent)) ?? '{}') as Record<string, unknown>;
    expect(record).toMatchObject({ user_name: 'postgres', application_name: 'http', table_name: 'public.customers' });
    const png = await page.screenshot({ type: 'png' });
    expect(png.length).toBeGreaterThan(10_000);
    if (process.env['UPDATE_SCREENSHOTS'] === '1') writeFileSync(SCREENSHOT, png);

    // A moment: the rows as they were then (the demo's table is tracked since its transforms were registered).
    const c = await t.pg();
    try {
      const before = (await c.query<{ m: string }>('SELECT pg_catalog.clock_timestamp()::text AS m')).rows[0]!.m;
      await new Promise((r) => setTimeout(r, 5));
      await c.query("UPDATE customers SET name = 'Augusta Ada King' WHERE id = 1");
      await page.click('button[type=submit]');
      await page.waitForFunction(`document.querySelector('#rows tr:nth-child(2)')?.textContent.includes('Augusta Ada King')`, { timeout: 10_000 });
      await page.type('#moment', before);
      await page.click('button[type=submit]');
      await page.waitForFunction(`document.querySelector('#rows tr:nth-child(2)')?.textContent.includes('Ada Lovelace')`, { timeout: 10_000 });
      expect(await page.$eval('#error', (e) => e.textContent)).toBe('');
      expect(await page.$$eval('#lineage svg', (svgs) => svgs.length)).toBe(1);
    } finally {
      await c.end();
    }
    await page.close();
  });
});
