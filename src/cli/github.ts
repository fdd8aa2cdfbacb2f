import { appendFile } from 'node:fs/promises';
import type { LifeboatError } from '../errors.js';
import type { CommandDocument } from '../report.js';

/**
 * GitHub Actions, where a job runs there (GITHUB_ACTIONS=true): problems with
 * a file and line become annotations on that line, and `backup`, `verify`,
 * `gate`, `run` and `rollback` leave their backup id and verdict in the
 * step's outputs (GITHUB_OUTPUT), for later steps to read.
 */
export function inGitHubActions(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.GITHUB_ACTIONS === 'true';
}

/** `file:line:column: message` details (runbook and config problems) as error annotations. */
export function annotations(err: LifeboatError): string[] {
  if (err.kind !== 'config' && err.kind !== 'runbook') return [];
  return err.details.flatMap((detail) => {
    const m = /^(.+?):(\d+):(\d+): (.*)$/.exec(detail);
    if (!m) return [];
    return [`::error file=${escapeProperty(m[1]!)},line=${m[2]},col=${m[3]}::${escapeData(m[4]!)}`];
  });
}

// https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts
function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** Pure: a command's outcome as step outputs (backup-id, verdict, exit-code). */
export function stepOutputs(
  command: string,
  outcome: { exitCode: number; doc: CommandDocument; backupId?: string },
): Record<string, string> {
  const { exitCode, doc } = outcome;
  const outputs: Record<string, string> = { 'exit-code': String(exitCode) };
  if (outcome.backupId) outputs['backup-id'] = outcome.backupId;
  const verdict = verdictOf(command, exitCode, doc);
  if (verdict) outputs.verdict = verdict;
  return outputs;
}

function verdictOf(command: string, exitCode: number, doc: CommandDocument): string {
  if (doc.dryRun) return exitCode === 0 ? 'would-proceed' : 'would-refuse';
  if (command === 'gate') return exitCode === 0 ? 'passed' : exitCode === 3 ? 'refused' : 'error';
  if (command === 'backup' || command === 'verify') {
    if (exitCode === 4) return 'failed';
    if (doc.unverified) return 'unverified';
    if (exitCode !== 0 && !doc.verification) return 'error';
    return doc.verification ? 'verified' : 'not-verified';
  }
  const status = (doc.run ?? doc.rollback)?.status;
  if (typeof status === 'string') return status;
  return (
    { 0: 'succeeded', 3: 'refused', 5: 'rolled-back', 6: 'needs-operator', 7: 'locked' }[
      exitCode
    ] ?? 'error'
  );
}

/** Append the outputs to the file GITHUB_OUTPUT names, as `key=value` lines. */
export async function writeStepOutputs(
  outputs: Record<string, string>,
  file = process.env.GITHUB_OUTPUT,
): Promise<void> {
  if (!file || !inGitHubActions()) return;
  const lines = Object.entries(outputs).map(([k, v]) => `${k}=${v.replace(/\n/g, ' ')}\n`);
  await appendFile(file, lines.join(''));
}
