// Drive headless Chromium over the Dagster UI and save the screenshots (called by take.sh).
// usage: node take.js http://127.0.0.1:3333 OUT_DIR
const path = require('path');
const { chromium } = require('playwright-core');

const [base, outDir] = process.argv.slice(2);
const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// Wait until the page shows `text` (the UI loads its data after the first paint; slow machines need time).
async function settle(page, text) {
  await page.waitForLoadState('networkidle');
  if (text) await page.getByText(text, { exact: true }).first().waitFor({ timeout: 120000 });
  await page.waitForTimeout(1500);
}

async function shot(page, name, clip) {
  const file = path.join(outDir, name);
  await page.screenshot({ path: file, clip });
  console.log('saved', file);
}

// Open the [Show Markdown] dialog of the metadata entry `label` and capture the dialog.
async function markdownDialog(page, label, name) {
  const key = page.locator('td', { hasText: new RegExp(`^${label.replace('/', '\\/')}$`) });
  const row = page.locator('tr').filter({ has: key }).first();
  await row.scrollIntoViewIfNeeded();
  const button = row.getByText('[Show Markdown]');
  if (await button.count()) {
    await button.first().click();
    const dialog = page.getByRole('dialog').last();
    await dialog.waitFor();
    await page.waitForTimeout(800);
    await dialog.screenshot({ path: path.join(outDir, name) });
    console.log('saved', path.join(outDir, name));
    await dialog.getByRole('button', { name: 'Close' }).click();
  } else {
    await row.screenshot({ path: path.join(outDir, name) }); // short markdown is shown inline
    console.log('saved', path.join(outDir, name), '(inline)');
  }
}

async function plots(page, asset, name) {
  await page.goto(`${base}/assets/${asset}`);
  await settle(page, 'Metadata');
  const button = page.getByRole('button', { name: 'Plots' });
  await button.first().scrollIntoViewIfNeeded();
  await button.first().click();
  await page.getByText('imggen/images', { exact: true }).first().waitFor({ timeout: 120000 });
  await page.waitForTimeout(3000);
  const section = page.getByText('Metadata', { exact: true }).first();
  await section.scrollIntoViewIfNeeded();
  await page.evaluate(() => window.scrollBy(0, -40));
  await page.waitForTimeout(500);
  await shot(page, name);
}

(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1100 } });

  // 1. generated_images, one partition's materialisation: numeric metadata and the contact sheet.
  await page.goto(`${base}/assets/generated_images?view=events&partition=Animals`);
  await settle(page, 'imggen/p50_latency_s');
  await shot(page, 'generated_images_event.png');
  await markdownDialog(page, 'imggen/preview', 'generated_images_contact_sheet.png');

  // 2. Plots: in Dagster 1.13 they sit in the Overview tab's Metadata section (Table | Plots toggle);
  //    the imggen/* numeric metadata is charted across partitions.
  await plots(page, 'generated_images', 'generated_images_plots.png');

  // 3. image_spend: spend by provider and model, and the spend-over-time chart.
  await page.goto(`${base}/assets/image_spend?view=events`);
  await settle(page, 'imggen/total_usd');
  await shot(page, 'image_spend_event.png');
  await markdownDialog(page, 'imggen/spend', 'image_spend_chart.png');
  await plots(page, 'image_spend', 'image_spend_plots.png');

  // 4. The catalogue: both pipelines (Python and component), with kinds, owners and groups.
  await page.goto(`${base}/assets`);
  await settle(page, 'image_spend');
  await shot(page, 'catalog.png');

  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
