/**
 * Every failure a user can cause or meet has a named class and an exit code
 * (DESIGN.md's table). The CLI maps them to exit codes in one place; anything
 * else is a bug (exit 1).
 */
export abstract class LifeboatError extends Error {
  abstract readonly exitCode: number;
  /** Machine-readable kind, used in --json output. */
  abstract readonly kind: string;
  /** Extra lines shown under the one-sentence message (reasons, differences, next steps). */
  readonly details: string[];
  /** What the command found before failing, for the --json document (e.g. the gate's verdict). */
  readonly data: unknown;

  constructor(
    message: string,
    options: { cause?: unknown; details?: string[]; data?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details ?? [];
    this.data = options.data;
  }
}

/** Exit 2: usage, config, runbook, connection, missing tools, no space. */
export class BadInputError extends LifeboatError {
  readonly exitCode = 2;
  readonly kind: string = 'bad-input';
}
/** Exit 2: the command line itself is wrong (an unknown flag, a missing argument); nothing ran. */
export class UsageError extends BadInputError {
  override readonly kind = 'usage';
}
export class ConfigError extends BadInputError {
  override readonly kind = 'config';
}
export class ConnectionError extends BadInputError {
  override readonly kind = 'connection';
}
export class ToolError extends BadInputError {
  override readonly kind = 'tools';
}
/** Exit 2: the role lacks a privilege; the error names the GRANT or ALTER ROLE that gives it. */
export class PrivilegeError extends BadInputError {
  override readonly kind = 'privileges';
}
export class StorageError extends BadInputError {
  override readonly kind = 'storage';
}

/** Exit 3: the guard refused; nothing was changed. */
export class GuardRefusedError extends LifeboatError {
  readonly exitCode = 3;
  readonly kind: string = 'guard-refused';
}
/** Exit 3: the fresh backup is of a schema that has changed since. */
export class SchemaChangedError extends GuardRefusedError {
  override readonly kind = 'schema-changed';
}

/** Exit 4: the backup does not restore, or its content differs. */
export class VerificationFailedError extends LifeboatError {
  readonly exitCode = 4;
  readonly kind = 'verification-failed';
}

/** Exit 5: a step failed and the run was rolled back completely. */
export class RolledBackError extends LifeboatError {
  readonly exitCode = 5;
  readonly kind = 'rolled-back';
}

/** Exit 6: a step failed and rollback is incomplete. */
export class RollbackIncompleteError extends LifeboatError {
  readonly exitCode = 6;
  readonly kind = 'rollback-incomplete';
}

/** Exit 7: another run holds the lock on this database. */
export class LockHeldError extends LifeboatError {
  readonly exitCode = 7;
  readonly kind = 'lock-held';
}

/** Exit 130 (128 + SIGINT, as shells report it): stopped by the operator; what was half done is gone. */
export class InterruptedError extends LifeboatError {
  readonly exitCode = 130;
  readonly kind = 'interrupted';
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
