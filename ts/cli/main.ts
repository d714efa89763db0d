/** The genaug command line: one subcommand per stage; errors print their code and exit non-zero. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Command, CommanderError, InvalidArgumentError } from 'commander';

import { GenaugError } from '../native/errors.js';
import { capabilities, packageRoot } from '../native/load.js';
import { type GlobalOptions } from './args.js';
import { annotateCommand } from './annotate.js';
import { bnstatsCommand } from './bnstats.js';
import { demoCommand } from './demo.js';
import { gapCommand } from './gap.js';
import { planCommand } from './plan.js';
import { priorsCommand } from './priors.js';
import { generateCommand } from './generate.js';
import { pasteCommand } from './paste.js';
import { similarityCommand } from './similarity.js';
import { runCommand } from './run.js';
import { scoreCommand } from './score.js';
import { filterCommand } from './filter.js';
import { embedCommand } from './embed.js';
import { poolCommand } from './pool.js';

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function buildProgram(global: GlobalOptions): Command {
  const program = new Command('genaug')
    .description('Make generative training data worth training on: embed, score, filter and deduplicate synthetic data for perception datasets.')
    .version(version())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('info')
    .description('what this build and machine can do: SIMD level, CUDA, threads')
    .action(() => {
      global.print(JSON.stringify(capabilities(), null, 2));
    });

  program.addCommand(similarityCommand(global));
  program.addCommand(bnstatsCommand(global));
  program.addCommand(gapCommand(global));
  program.addCommand(annotateCommand(global));
  program.addCommand(scoreCommand(global));
  program.addCommand(filterCommand(global));
  program.addCommand(priorsCommand(global));
  program.addCommand(planCommand(global));
  program.addCommand(embedCommand(global));
  program.addCommand(generateCommand(global));
  program.addCommand(poolCommand(global));
  program.addCommand(pasteCommand(global));

  program.addCommand(demoCommand(global));
  program.addCommand(runCommand(global));

  // Usage errors from commander read like every other genaug error (and still exit 2).
  const output = { outputError: (text: string, write: (s: string) => void) => write(`genaug: error [E_ARGUMENT]: ${text.replace(/^error: /, '')}`) };
  program.configureOutput(output);
  program.commands.forEach(function exitOverrideAll(c: Command) {
    c.exitOverride();
    c.configureOutput(output);
    c.commands.forEach(exitOverrideAll);
  });
  return program;
}

/** Runs the CLI; returns the exit code (0 ok, 1 error, 2 usage). */
export async function run(argv: string[]): Promise<number> {
  const global: GlobalOptions = { print: (line) => process.stdout.write(`${line}\n`) };
  const program = buildProgram(global);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0; commander already printed the message.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof InvalidArgumentError) return 2;
    if (e instanceof GenaugError) {
      process.stderr.write(`genaug: error [${e.code}]: ${e.message}\n`);
      return e.code === 'E_ARGUMENT' ? 2 : 1;
    }
    process.stderr.write(`genaug: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}
