#!/usr/bin/env node
/**
 * The `colo-proxy` command. Each subcommand lives in its own module and registers itself here.
 * Errors with a code (ColoError, CaptureError, FramingError, Node's ENOENT…) are printed as one
 * line naming what was wrong, with exit status 2, never as a stack trace.
 */
import { existsSync, readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerFlows } from './flows.js';
import { registerCompare } from './compare.js';
import { registerInspect } from './inspect.js';
import { registerBench } from './bench.js';
import { registerDiff } from './diff.js';
import { registerWorkload } from './workload.js';
import { registerReplay } from './replay.js';

/** package.json sits two levels up from src/cli (tsx) or three from dist/src/cli (built). */
function packageVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json']) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(url)) {
      const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'colo-proxy' && pkg.version) return pkg.version;
    }
  }
  return 'unknown';
}

const program = new Command('colo-proxy')
  .description('userspace COLO network proxy: compare, filters, QMP control, replay benchmark, divergence analyzer')
  .version(packageVersion())
  .showHelpAfterError()
  .exitOverride((err) => {
    // commander's own usage errors: exit 2 like other bad input; --help/--version exit 0.
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

registerInspect(program);
registerCompare(program);
registerFlows(program);
registerBench(program);
registerDiff(program);
registerWorkload(program);
registerReplay(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const err = e as Error & { code?: string };
  process.stderr.write(`colo-proxy: ${err.message}${err.code ? ` (${err.code})` : ''}\n`);
  if (process.env['COLO_DEBUG']) process.stderr.write(`${err.stack}\n`);
  process.exitCode = 2;
}
