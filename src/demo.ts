import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readCatalog } from './repository/catalog.js';
import { startThrowawayCluster } from './cluster.js';
import { buildConfig } from './config.js';
import { withClient } from './db.js';
import { packageFile } from './package-root.js';
import { RolledBackError } from './errors.js';
import type { Manifest, VerificationRecord } from './repository/manifest.js';
import type { Progress } from './progress.js';
import type { RunReport } from './run/report-types.js';
import { runRunbook } from './run/runner.js';
import { resolveTarget, withDatabase } from './target.js';

export const DEMO_RUNBOOK = packageFile('runbooks/demo/upgrade-shop.yaml');
/** The --freeze variant: a step no down can undo, rolled back by restoring the backup. */
export const DEMO_FROZEN_RUNBOOK = packageFile('runbooks/demo/drop-legacy.yaml');
const DEMO_DATA = packageFile('scripts/demo/shop.sql');

export interface DemoResult {
  serverVersion: string;
  rows: Record<string, number>;
  manifest: Manifest | undefined;
  verification: VerificationRecord | undefined;
  run: RunReport;
}

/**
 * The main job on an embedded default: a throwaway PostgreSQL, a sample shop,
 * and a guarded run whose third step fails and is rolled back with proof.
 * Everything it starts or writes is removed before it returns.
 */
export async function runDemo(
  progress: Progress,
  options: { freeze?: boolean; signal?: AbortSignal } = {},
): Promise<DemoResult> {
  const cluster = await progress.task('Start a throwaway PostgreSQL on 127.0.0.1', () =>
    startThrowawayCluster(),
  );
  const workdir = await mkdtemp(path.join(os.tmpdir(), 'lifeboat-demo-'));
  try {
    const server = resolveTarget(cluster.url, {});
    const target = withDatabase(server, 'shop');
    const { serverVersion, rows } = await progress.task('Load a sample shop database', async () => {
      await withClient(server, (c) => c.query('create database shop'));
      const sql = await readFile(DEMO_DATA, 'utf8');
      return withClient(target, async (c) => {
        await c.query(sql);
        const counts = await c.query<{ t: string; n: string }>(
          `select 'customers' as t, count(*)::text as n from customers union all
           select 'products', count(*)::text from products union all
           select 'orders', count(*)::text from orders union all
           select 'order_items', count(*)::text from order_items`,
        );
        const version = await c.query<{ v: string }>(
          `select current_setting('server_version') as v`,
        );
        return {
          serverVersion: version.rows[0]!.v,
          rows: Object.fromEntries(counts.rows.map((r) => [r.t, Number(r.n)])),
        };
      });
    });
    const config = buildConfig(
      { destinations: [{ name: 'local', path: path.join(workdir, 'backups') }] },
      undefined,
      {},
      workdir,
      {},
    );
    let run: RunReport;
    try {
      run = await runRunbook({
        config,
        target,
        progress,
        runbookFile: options.freeze ? DEMO_FROZEN_RUNBOOK : DEMO_RUNBOOK,
        backup: 'new',
        lockWaitMs: 0,
        resolutions: {},
        freeze: options.freeze ?? false,
        rehearse: false,
        signal: options.signal,
      });
    } catch (err) {
      // The demo's upgrade is meant to fail and be rolled back; anything else is a real failure.
      if (!(err instanceof RolledBackError)) throw err;
      run = err.data as RunReport;
    }
    const entry = (await readCatalog(config.destinations, undefined)).find(
      (e) => e.id === run.backupId,
    );
    return {
      serverVersion,
      rows,
      manifest: entry?.manifest,
      verification: entry?.verifications.at(-1),
      run,
    };
  } finally {
    await cluster.stop();
    await rm(workdir, { recursive: true, force: true });
  }
}
