/**
 * Headless Chromium for checking HTML reports: load a local file with the network cut off,
 * return the rendered DOM, the page's uncaught errors (recorded by src/report/page.ts's trap
 * as `data-js-errors`), console lines, and optionally a screenshot. Chromium runs in its own
 * process group with a throw-away profile; the group is killed by PID when done.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hasTool } from './tools.js';

export const CHROMIUM = 'chromium';
export const hasChromium = (): boolean => hasTool(CHROMIUM);

export interface LoadResult {
  /** The DOM after scripts ran (`--dump-dom`). */
  dom: string;
  /** Uncaught errors and unhandled rejections the page recorded. */
  errors: string[];
  /** The page's own script finished (`data-ready="1"`). */
  ready: boolean;
  /** Console messages Chromium logged (CSP violations, console.error…). */
  console: string[];
}

function run(args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(CHROMIUM, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      killGroup();
      reject(new Error(`chromium timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      killGroup(); // stray zygote/renderer processes of this group, by PID
      resolve({ stdout, stderr, code });
    });
  });
}

function baseArgs(profile: string): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-extensions',
    `--user-data-dir=${profile}`,
    // No network: names resolve nowhere, and the report's CSP forbids fetches anyway.
    '--host-resolver-rules=MAP * ~NOTFOUND',
    '--enable-logging=stderr',
    '--v=0',
    '--virtual-time-budget=5000',
  ];
}

/** Load `file` in headless Chromium and return what it rendered. */
export async function loadInChromium(file: string, timeoutMs = 60_000): Promise<LoadResult> {
  const profile = mkdtempSync(join(tmpdir(), 'colo-chromium-'));
  try {
    const r = await run([...baseArgs(profile), '--dump-dom', pathToFileURL(file).href], timeoutMs);
    const dom = r.stdout;
    if (!dom.includes('<html')) throw new Error(`chromium rendered nothing (exit ${r.code}): ${r.stderr.slice(-500)}`);
    const root = /<html[^>]*>/.exec(dom)?.[0] ?? '';
    const errAttr = /data-js-errors="([^"]*)"/.exec(root)?.[1];
    const errors = errAttr === undefined ? [] : errAttr.split(' | ').map(unescapeAttr);
    const ready = /data-ready="1"/.test(root);
    const consoleLines = r.stderr.split('\n').filter((l) => l.includes('CONSOLE'));
    return { dom, errors, ready, console: consoleLines };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/** Render `file` to a PNG at `out` (for looking at a report by eye). */
export async function screenshot(file: string, out: string, width = 1280, height = 1600, timeoutMs = 60_000): Promise<void> {
  const profile = mkdtempSync(join(tmpdir(), 'colo-chromium-'));
  try {
    await run([...baseArgs(profile), `--screenshot=${out}`, `--window-size=${width},${height}`, '--hide-scrollbars', pathToFileURL(file).href], timeoutMs);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

function unescapeAttr(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}
