import type { Argv, CommandModule } from 'yargs';
import { globalOptions, targetFor, type GlobalArgs } from '../cli/context.js';
import { exitCodes } from '../cli/help.js';
import { emit, runCommand } from '../cli/output.js';
import { loadConfig, type Config } from '../config.js';
import { ConfigError } from '../errors.js';
import { doctorFailure, runDoctor } from '../doctor.js';
import { redact } from '../secrets.js';

export const doctorCommand: CommandModule<object, GlobalArgs> = {
  command: 'doctor',
  describe: 'Preflight: server, privileges, pg tools, destinations, config',
  builder: (y: Argv) =>
    globalOptions(y)
      .example('$0 doctor', 'check everything backup and verify need, one line each')
      .epilog(exitCodes(0, 2)),
  handler: (argv) =>
    runCommand(argv, async () => {
      let config: Config | undefined;
      let configProblems: string[] = [];
      try {
        config = await loadConfig({ config: argv.config, databaseUrl: argv.databaseUrl });
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        configProblems = err.details.length > 0 ? err.details : [err.message];
      }
      const report = await runDoctor({ config, configProblems, target: targetFor(argv, config) });
      const lines = report.checks.map(
        (c) => `${c.ok ? 'ok  ' : c.optional ? 'warn' : 'FAIL'}  ${c.name}: ${c.detail}`,
      );
      if (!report.ok) {
        if (!argv.json) process.stdout.write(`${redact(lines.join('\n'))}\n`);
        throw doctorFailure(report);
      }
      emit(argv, { doctor: report }, lines);
    }),
};
