import path from 'node:path';
import { InterruptedError, LifeboatError, PrivilegeError, errorMessage } from '../errors.js';
import { sqlState } from '../db.js';
import { packageFile } from '../package-root.js';
import type { UnreadableDestination } from '../repository/catalog.js';
import type { CommandDocument } from '../report.js';
import { redact } from '../secrets.js';
import type { GlobalArgs } from './context.js';
import { handleInterrupts, type InterruptPolicy } from './interrupt.js';
import { annotations, inGitHubActions, stepOutputs, writeStepOutputs } from './github.js';
import { writeReports, type ReportSpec } from './reports.js';

/** Print the command's result: its JSON document, or its human lines. Returns the document. */
export function emit<D extends CommandDocument>(argv: GlobalArgs, doc: D, lines: string[]): D {
  if (argv.json) process.stdout.write(`${redact(JSON.stringify({ ok: true, ...doc }, null, 2))}\n`);
  else if (lines.length > 0) process.stdout.write(`${redact(lines.join('\n'))}\n`);
  return doc;
}

/** A destination the catalog could not read: its copies are not counted, and the user hears why. */
export function warnUnreadable(found: UnreadableDestination): void {
  process.stderr.write(
    `warning: destination ${found.destination} cannot be read (${found.reason}); its copies are not counted\n`,
  );
}

/**
 * The one place that turns an outcome into an exit code: typed errors carry
 * theirs (DESIGN.md's table); anything else is a bug and exits 1. With a
 * report spec, the outcome is also written as evidence (see reports.ts).
 */
export async function runCommand(
  argv: GlobalArgs,
  fn: (signal: AbortSignal) => Promise<CommandDocument | void>,
  report?: ReportSpec,
  interrupt: InterruptPolicy = { kind: 'exit' },
): Promise<void> {
  const interrupts = handleInterrupts(interrupt);
  try {
    const doc = await fn(interrupts.signal).catch((err: unknown) => {
      // Whatever broke once the tools were stopped, the cause is the interrupt.
      if (!interrupts.signal.aborted || interrupt.kind !== 'abort') throw err;
      if (err instanceof InterruptedError) throw err;
      throw new InterruptedError(
        `Interrupted: ${interrupt.stopping} was stopped, and what it had half done was removed.`,
        { cause: err },
      );
    });
    process.exitCode = 0;
    if (report) {
      await writeReports(report, { ok: true, exitCode: 0, doc: doc ?? {} }).catch(reportFailed);
      await writeStepOutputs(
        stepOutputs(report.command, { exitCode: 0, doc: doc ?? {}, backupId: report.backup?.id }),
      ).catch(reportFailed);
    }
  } catch (err) {
    process.exitCode = reportError(argv, err);
    if (report && err instanceof LifeboatError) {
      // A failure's data is whatever the error carried: a whole result or a part of one.
      const data = err.data && typeof err.data === 'object' ? (err.data as CommandDocument) : {};
      await writeStepOutputs(
        stepOutputs(report.command, {
          exitCode: err.exitCode,
          doc: dataDocument(report, data),
          backupId: report.backup?.id,
        }),
      ).catch(reportFailed);
      await writeReports(report, {
        ok: false,
        exitCode: err.exitCode,
        // An error that carried nothing leaves the document empty, not an empty result to render.
        doc: err.data ? { [report.dataKey ?? report.command]: data } : {},
        error: { message: err.message, details: err.details },
      }).catch(reportFailed);
    }
  } finally {
    interrupts.done();
  }
}

/**
 * The operator runbook that explains an outcome a person must act on: shipped
 * with lifeboat, shown relative to the current directory when it is below it.
 */
export function operatorRunbook(err: LifeboatError): string | undefined {
  const name =
    err.exitCode === 6
      ? /in doubt/.test(err.message)
        ? 'step-in-doubt.md'
        : 'run-exit-6.md'
      : err.exitCode === 4
        ? 'verify-failed.md'
        : err.exitCode === 7
          ? 'lock-held-by-dead-host.md'
          : undefined;
  if (!name) return undefined;
  const file = packageFile('runbooks', 'operator', name);
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith('..') ? file : relative;
}

export function reportError(argv: { json?: boolean }, err: unknown): number {
  if (err instanceof LifeboatError) {
    const runbook = operatorRunbook(err);
    if (argv.json) {
      const doc = {
        ok: false,
        exitCode: err.exitCode,
        error: {
          kind: err.kind,
          message: err.message,
          details: err.details,
          ...(runbook ? { runbook } : {}),
        },
        ...(err.data && typeof err.data === 'object' ? { result: err.data } : {}),
      };
      process.stdout.write(`${redact(JSON.stringify(doc, null, 2))}\n`);
    }
    if (inGitHubActions()) for (const a of annotations(err)) process.stderr.write(`${redact(a)}\n`);
    process.stderr.write(`${redact(`error: ${err.message}`)}\n`);
    for (const line of err.details) process.stderr.write(`  - ${redact(line)}\n`);
    if (runbook) process.stderr.write(`What to do, step by step: ${runbook}\n`);
    return err.exitCode;
  }
  if (sqlState(err) === '42501') {
    // A privilege nothing checked for: still bad input (exit 2), never a stack trace.
    return reportError(
      argv,
      new PrivilegeError(
        `The server refused: ${errorMessage(err)}. \`lifeboat doctor\` lists every privilege lifeboat needs and the statement that grants it.`,
        { cause: err },
      ),
    );
  }
  const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
  if (argv.json) {
    const doc = {
      ok: false,
      exitCode: 1,
      error: { kind: 'internal', message: redact(String(err)) },
    };
    process.stdout.write(`${redact(JSON.stringify(doc, null, 2))}\n`);
  }
  process.stderr.write(
    `${redact(`internal error (a bug in lifeboat; please report it):\n${text}`)}\n`,
  );
  return 1;
}

/** A failure's data as the command's document: the whole document, or the part under its key. */
function dataDocument(report: ReportSpec, data: CommandDocument): CommandDocument {
  return 'backup' in data || 'verification' in data
    ? data
    : { [report.dataKey ?? report.command]: data };
}

/** Evidence that cannot be written is worth a warning, never a changed outcome. */
function reportFailed(err: unknown): undefined {
  process.stderr.write(`warning: the report could not be written: ${redact(String(err))}\n`);
  return undefined;
}
