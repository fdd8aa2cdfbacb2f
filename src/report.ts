import type { GateVerdict } from './gate.js';
import type { DrillRecord, Manifest, VerificationRecord } from './repository/manifest.js';
import type { RunReport } from './run/report-types.js';
import { formatBytes, formatDuration } from './units.js';

/**
 * The Markdown summary of a command's outcome, with the evidence a reviewer
 * asks for: which backup, its checksums, how long the restore took, every
 * fingerprint compared, every step with its duration and outcome. Pure: the
 * caller supplies the command's JSON document and the manifest it refers to.
 */
export interface ReportInput {
  command: string;
  ok: boolean;
  exitCode: number;
  at: string;
  target?: string;
  doc: CommandDocument;
  error?: { message: string; details: string[] };
  manifest?: Manifest;
}

/**
 * A command's outcome as `--json` prints it (beside `ok`) and the reports and
 * step outputs read it: named results, typed by the modules that make them.
 * Those read here are typed as parts of the real types, since a failure's
 * data may hold only part of a run or a verdict.
 */
export interface CommandDocument {
  verification?: VerificationRecord | null;
  run?: RunEvidence;
  rollback?: RunEvidence;
  gate?: GateEvidence;
  drill?: DrillRecord;
  /** A dry run's preview: what would happen. */
  dryRun?: object;
  /** A backup stored but not verified, and why. */
  unverified?: { reason: string };
  [result: string]: unknown;
}

type RunEvidence = Pick<RunReport, 'runId' | 'runbook' | 'backupId' | 'status'> & {
  steps: Pick<RunReport['steps'][number], 'id' | 'outcome' | 'durationMs' | 'error'>[];
  rollback?: { proof?: NonNullable<RunReport['rollback']>['proof'] };
  restoredBy?: RunReport['restoredBy'];
};

type GateEvidence = Partial<Pick<GateVerdict, 'ok' | 'backup' | 'reasons' | 'changesSinceBackup'>>;

export function markdownReport(r: ReportInput): string {
  const out: string[] = [
    `## lifeboat ${r.command}: ${r.ok ? 'passed' : 'FAILED'} (exit ${r.exitCode})`,
    '',
    `${r.at}${r.target ? ` · ${r.target}` : ''}`,
    '',
  ];
  if (r.error) {
    out.push(`**${r.error.message}**`, '', ...r.error.details.map((d) => `- ${d}`), '');
  }
  if (r.manifest) out.push(...backupEvidence(r.manifest, r.doc.verification ?? undefined));
  const run = r.doc.run ?? r.doc.rollback;
  if (Array.isArray(run?.steps)) out.push(...runEvidence(run));
  if (r.doc.gate) out.push(...gateEvidence(r.doc.gate));
  if (r.doc.drill) out.push(...drillEvidence(r.doc.drill));
  return `${out.join('\n').trimEnd()}\n`;
}

function backupEvidence(m: Manifest, v: VerificationRecord | undefined): string[] {
  const lines = [
    `**Backup** \`${m.id}\` of ${m.target.described} (system ${m.target.systemIdentifier}, PostgreSQL ${m.target.serverVersion}), taken ${m.createdAt} at snapshot \`${m.snapshot.id}\`.`,
    '',
    `Dump: ${formatBytes(m.dump.bytes)} in ${m.files.length} files, ${formatDuration(m.dump.durationMs)}, pg_dump ${m.tools.pgDump.version}.`,
    '',
  ];
  if (v) {
    lines.push(
      `**Verification** ${v.ok ? 'passed' : 'FAILED'} at ${v.at}: restored from the copy in ${v.restoredFrom || '-'} into \`${v.scratch.database}\` in ${formatDuration(v.restoreMs)}${v.fingerprintMs !== undefined ? `, fingerprinted in ${formatDuration(v.fingerprintMs)}` : ''} (${formatDuration(v.durationMs)} in all); compared ${v.compared.tables} tables, ${v.compared.sequences} sequences, ${v.compared.largeObjects} large objects and the schema.`,
      '',
    );
    if (v.differences.length > 0) {
      lines.push('| object | expected | found |', '|---|---|---|');
      for (const d of v.differences)
        lines.push(`| ${d.kind} ${d.object} | ${d.expected} | ${d.found} |`);
      lines.push('');
    }
  }
  lines.push(
    '<details><summary>Fingerprints compared</summary>',
    '',
    '| table | rows | content hash |',
    '|---|---:|---|',
    ...m.fingerprints.tables.map((t) => `| ${t.schema}.${t.name} | ${t.rows} | \`${t.hash}\` |`),
    '',
    `Schema fingerprint \`${m.fingerprints.schemaHash}\`; ${m.fingerprints.sequences.length} sequences; ${m.fingerprints.largeObjects.count} large objects.`,
    '',
    '</details>',
    '',
    '<details><summary>Checksums (SHA-256)</summary>',
    '',
    '| file | bytes | sha256 |',
    '|---|---:|---|',
    ...m.files.map((f) => `| ${f.path} | ${f.size} | \`${f.sha256}\` |`),
    '',
    '</details>',
    '',
  );
  return lines;
}

function runEvidence(run: RunEvidence): string[] {
  const lines = [
    `**Run** \`${run.runId || '(nothing to do)'}\` of runbook ${run.runbook}, guarded by backup \`${run.backupId ?? '-'}\`: ${run.status}.`,
    '',
    '| step | outcome | duration | error |',
    '|---|---|---:|---|',
    ...run.steps.map(
      (s) =>
        `| ${s.id} | ${s.outcome} | ${s.durationMs !== undefined ? formatDuration(s.durationMs) : ''} | ${(s.error ?? '').replaceAll('|', '\\|')} |`,
    ),
    '',
  ];
  const proof = run.rollback?.proof;
  if (proof) {
    lines.push(
      proof.equal
        ? 'Rollback proof: the fingerprints after rollback equal those taken before the first step.'
        : `Rollback proof FAILED: ${proof.differences.length} difference(s) from the pre-run state.`,
      '',
    );
  }
  if (run.restoredBy) {
    lines.push(
      `Rolled back by restoring backup \`${run.restoredBy.backupId}\`; the failed database is kept as \`${run.restoredBy.replacedAs}\`.`,
      '',
    );
  }
  return lines;
}

function drillEvidence(d: DrillRecord): string[] {
  return [
    `**Drill** ${d.passed ? 'passed' : 'FAILED'} at ${d.at}: backup \`${d.backupId}\` restored from the copy in ${d.from.destination}${d.from.remote ? ' (off-site)' : ''} alone onto ${d.onto.server} and proved in ${formatDuration(d.durationMs)}; the backup was ${formatDuration(d.backupAgeMs)} old.${d.error ? ` ${d.error}` : ''}`,
    '',
    ...(d.encryption
      ? [
          `Encrypted to ${d.encryption.recipients.join(', ')}; the key came from ${d.encryption.identityFrom}.`,
          '',
        ]
      : []),
    '| phase | duration |',
    '|---|---:|',
    ...d.phases.map((p) => `| ${p.name} | ${formatDuration(p.ms)} |`),
    '',
  ];
}

function gateEvidence(g: GateEvidence): string[] {
  if (!g.backup) return (g.reasons ?? []).map((r) => `- ${r}`).concat('');
  return [
    `Backup \`${g.backup.id}\` taken ${g.backup.createdAt}, verified ${g.backup.verifiedAt}, intact in ${g.backup.intactCopies.join(', ')}; ${g.changesSinceBackup?.note ?? ''}.`,
    '',
  ];
}

/** JUnit XML for the gate, so any CI shows each check as a test. */
export function gateJunit(input: {
  ok: boolean;
  target: string;
  checks: { name: string; failure?: string }[];
  seconds: number;
}): string {
  const esc = (s: string): string =>
    s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const failures = input.checks.filter((c) => c.failure !== undefined).length;
  const cases = input.checks.map((c) =>
    c.failure === undefined
      ? `    <testcase classname="lifeboat.gate" name="${esc(c.name)}"/>`
      : `    <testcase classname="lifeboat.gate" name="${esc(c.name)}">\n      <failure message="${esc(c.failure)}">${esc(c.failure)}</failure>\n    </testcase>`,
  );
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="lifeboat gate" tests="${input.checks.length}" failures="${failures}" time="${input.seconds.toFixed(3)}">`,
    `  <testsuite name="lifeboat gate ${esc(input.target)}" tests="${input.checks.length}" failures="${failures}" time="${input.seconds.toFixed(3)}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
