import type { Argv, CommandModule } from 'yargs';
import { globalOptions, targetFor, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { loadConfig } from '../config.js';
import { BadInputError } from '../errors.js';
import { readHistory, type BackupHistory, type History, type RunHistory } from '../history.js';
import { formatBytes, formatDuration } from '../units.js';

interface HistoryArgs extends GlobalArgs {
  limit: number;
}

export const historyCommand: CommandModule<object, HistoryArgs> = {
  command: 'history',
  describe:
    "This target's backups, verifications and runs over time, and the age of its newest verified backup",
  builder: (y: Argv) =>
    globalOptions(y)
      .option('limit', {
        type: 'number',
        default: 20,
        describe: 'Show the newest N backups and N runs (0: all)',
      })
      .example('$0 history', 'sizes, dump and restore times, results, runs, newest verified backup')
      .example(
        '$0 history --limit 0 --json | jq .history.newestVerified.ageMs',
        'everything, as JSON',
      )
      .epilog(
        [
          'Backups are those of this server and database. When the target cannot be reached the',
          'repository part is still shown (matched by database name) and the journal is said to be',
          'unreadable; that is not an error.',
          '',
          exitCodes(0, 2),
        ].join('\n'),
      ),
  handler: (argv) =>
    runCommand(argv, async () => {
      if (!Number.isInteger(argv.limit) || argv.limit < 0) {
        throw new BadInputError('--limit must be a whole number ≥ 0 (0 shows everything).');
      }
      const config = await loadConfig({ config: argv.config, databaseUrl: argv.databaseUrl });
      const history = await readHistory({ config, target: targetFor(argv, config) });
      const shown = limited(history, argv.limit);
      emit(argv, { history: shown }, historyLines(shown, history));
    }),
};

/** The newest `limit` backups and runs (all with 0). */
function limited(h: History, limit: number): History {
  if (limit === 0) return h;
  return { ...h, backups: h.backups.slice(-limit), runs: h.runs?.slice(-limit) ?? null };
}

function when(iso: string): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}` : '?';
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    `  ${r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')}`.trimEnd(),
  );
}

/** The restore times of its verifications (one that failed before restoring has none). */
function restoreText(b: BackupHistory): string {
  const times = b.verifications
    .filter((v) => v.ok || v.restoreMs > 0)
    .map((v) => formatDuration(v.restoreMs));
  if (times.length === 0) return '-';
  return times.length <= 3 ? times.join(', ') : `${times.slice(-2).join(', ')} (${times.length}×)`;
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function resultText(b: BackupHistory): string {
  const last = b.verifications.at(-1);
  let text: string;
  if (b.result === 'damaged') text = `DAMAGED: ${b.problems[0] ?? 'manifest unreadable'}`;
  else if (b.result === 'not-verified') text = 'not verified';
  else if (b.result === 'verified') text = 'verified';
  else text = `verify FAILED: ${last?.error ?? `${last?.differences ?? 0} difference(s)`}`;
  const rehearsed = [...new Set(b.rehearsals.filter((r) => r.passed).map((r) => r.runbook))];
  return rehearsed.length > 0 ? `${text}, rehearsed ${rehearsed.join(', ')}` : text;
}

/** Every drill of the target's backups, newest first: the recovery times over time. */
function drillLines(all: History): string[] {
  const drills = all.backups
    .flatMap((b) => b.drills.map((d) => ({ ...d, id: b.id })))
    .sort((a, b) => b.at.localeCompare(a.at));
  if (drills.length === 0) return ['Drills (0)', '  none yet: run `lifeboat drill`'];
  return [
    `Drills (${drills.length})`,
    ...table([
      ['drilled (UTC)', 'recovery', 'backup age', 'from', 'backup', 'result'],
      ...drills.map((d) => [
        when(d.at),
        formatDuration(d.durationMs),
        formatDuration(d.backupAgeMs),
        d.from,
        d.id,
        d.passed ? 'passed' : shorten(`FAILED: ${d.error ?? ''}`, 60),
      ]),
    ]),
  ];
}

function stepsText(r: RunHistory): string {
  const parts = [`${r.applied} applied`];
  if (r.undone > 0) parts.push(`${r.undone} undone`);
  if (r.failed > 0) parts.push(`${r.failed} failed`);
  return parts.join(', ');
}

function historyLines(h: History, all: History): string[] {
  const lines = [
    `History of ${h.target}${h.identity ? ` (server ${h.identity.systemIdentifier})` : ''}`,
  ];
  if (!h.identity) {
    lines.push(
      `  the server identity could not be read (${(h.identityError ?? 'unknown').replace(/\.$/, '')}); backups are matched by database name only`,
    );
  }
  lines.push('');
  const hiddenBackups = all.backups.length - h.backups.length;
  lines.push(
    `Backups (${all.backups.length}${hiddenBackups > 0 ? `, the newest ${h.backups.length} shown` : ''})`,
  );
  if (h.backups.length === 0) lines.push('  none yet: run `lifeboat backup`');
  else {
    lines.push(
      ...table([
        ['taken (UTC)', 'size', 'dump', 'restore', 'id', 'result'],
        ...h.backups.map((b) => [
          when(b.createdAt),
          b.bytes === null ? '?' : formatBytes(b.bytes),
          b.dumpMs === null ? '?' : formatDuration(b.dumpMs),
          restoreText(b),
          b.id,
          shorten(resultText(b), 80),
        ]),
      ]),
    );
  }
  if (h.otherBackups > 0) {
    lines.push(`  (${h.otherBackups} backup(s) of other databases or servers not shown)`);
  }
  lines.push('', ...drillLines(all));
  lines.push('');
  if (!h.runs || !all.runs) {
    lines.push(`Runs: ${h.journalError ?? 'the journal could not be read'}`);
  } else {
    const hiddenRuns = all.runs.length - h.runs.length;
    lines.push(
      `Runs (${all.runs.length}${hiddenRuns > 0 ? `, the newest ${h.runs.length} shown` : ''})`,
    );
    if (h.runs.length === 0) lines.push('  none yet');
    else {
      lines.push(
        ...table([
          ['started (UTC)', 'duration', 'status', 'steps', 'runbook', 'id'],
          ...h.runs.map((r) => [
            when(r.startedAt),
            r.durationMs === null ? 'running' : formatDuration(r.durationMs),
            r.status,
            stepsText(r),
            r.runbook,
            r.id,
          ]),
        ]),
      );
    }
  }
  lines.push('');
  const n = h.newestVerified;
  lines.push(
    n
      ? `Newest verified backup: ${formatDuration(n.ageMs)} old (${n.id}, verified ${when(n.verifiedAt)}); ${
          n.withinPolicy
            ? `within the policy's ${formatDuration(h.maxAgeMs)}`
            : `OLDER than the policy's ${formatDuration(h.maxAgeMs)}: run \`lifeboat backup\``
        }`
      : 'Newest verified backup: none; run `lifeboat backup` (it verifies by restoring)',
  );
  return lines;
}
