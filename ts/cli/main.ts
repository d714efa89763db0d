/** The genaug command line: one subcommand per stage; errors print their code and exit non-zero. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Command, CommanderError, InvalidArgumentError } from 'commander';

import { lockOutputs, type LockTarget } from '../io/lock.js';
import { GenaugError } from '../native/errors.js';
import { providerStatus } from '../models/onnx.js';
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
import { exportCommand } from './export.js';
import { queueCommand } from './queue.js';
import { workerCommand } from './worker.js';

/** Options naming what a command writes (read-modify-write included: a scores --table, a plan's --captions store). */
const OUTPUT_OPTIONS = new Set(['out', 'table', 'rejected', 'sizeTable', 'captions', 'cache']);
/** These take their folder's lock themselves (the demo folder, the run folder). */
const LOCKS_ITSELF = new Set(['run', 'demo']);

/**
 * The one-writer rule (docs/reliability.md, "One writer"): every output
 * option of the command about to run, as lock targets. An option of a
 * folder (`<dir>`) locks DIR/.lock; one of a file or file prefix locks
 * FILE.lock beside it, which covers the sidecars named after it
 * (FILE.partial/, FILE.index.jsonl, PREFIX.*.npy, OUT.rejected.jsonl, ...).
 */
export function outputLocks(cmd: Command): LockTarget[] {
  if (LOCKS_ITSELF.has(cmd.name())) return [];
  const opts = cmd.opts() as Record<string, unknown>;
  const out: LockTarget[] = [];
  for (const o of cmd.options) {
    const v = opts[o.attributeName()];
    if (!OUTPUT_OPTIONS.has(o.attributeName()) || typeof v !== 'string' || !v) continue;
    out.push(/<dir>/.test(o.flags) ? { folder: v } : { file: v });
  }
  return out;
}

/** `genaug score against-real`: the command's name with its parents'. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * A default as a user would type it on the command line: `a,b` for a list
 * (not `["a","b"]`), a plain word or number for the rest; commander's own
 * rendering is JSON. Options that describe their default themselves keep it.
 */
export function typedDefault(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.map((v) => typedDefault(v) ?? '').join(',');
  if (typeof value === 'string') return value === '' ? '""' : /\s/.test(value) ? `"${value}"` : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

/** Help the same way for every command: required options marked, defaults as typed. */
function polishHelp(cmd: Command): void {
  for (const o of cmd.options) {
    if (o.defaultValue !== undefined && o.defaultValueDescription === undefined) {
      const typed = typedDefault(o.defaultValue);
      if (typed !== undefined) o.defaultValueDescription = typed;
    }
  }
  cmd.configureHelp({
    optionTerm: (o) => o.flags,
    optionDescription: (o) => {
      const extra: string[] = [];
      if (o.argChoices && o.argChoices.length > 0) extra.push(`choices: ${o.argChoices.join(', ')}`);
      if (o.defaultValueDescription !== undefined && !o.negate) extra.push(`default: ${o.defaultValueDescription}`);
      const text = extra.length > 0 ? `${o.description} (${extra.join('; ')})` : o.description;
      return o.mandatory ? `required: ${text}` : text;
    },
  });
  cmd.commands.forEach(polishHelp);
}

export function buildProgram(global: GlobalOptions, held: Array<() => Promise<void>> = []): Command {
  const program = new Command('genaug')
    .description(
      'Make generative training data worth training on: plan prompts from a real COCO/LVIS dataset, generate images on ' +
        'your diffusion servers, cut out and embed the objects, score and filter them, then paste the kept ones into the ' +
        'real images (COCO, YOLO, WebDataset) with a report of what happened. Start with `genaug demo` (no model or ' +
        'server needed) or `genaug run CONFIG`.',
    )
    .version(version())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  // The way in first, then the stages in pipeline order, then the tools.
  program.commandsGroup('Start here:');
  program.addCommand(demoCommand(global));
  program.addCommand(runCommand(global));

  program.commandsGroup('Stages, in pipeline order (what genaug run does):');
  program.addCommand(priorsCommand(global));
  program.addCommand(planCommand(global));
  program.addCommand(generateCommand(global));
  program.addCommand(annotateCommand(global));
  program.addCommand(embedCommand(global));
  program.addCommand(scoreCommand(global));
  program.addCommand(filterCommand(global));
  program.addCommand(poolCommand(global));
  program.addCommand(pasteCommand(global));
  program.addCommand(exportCommand(global));

  program.commandsGroup('Many machines:');
  program.addCommand(workerCommand(global));
  program.addCommand(queueCommand(global));

  program.commandsGroup('Analysis and tools:');
  program.addCommand(gapCommand(global));
  program.addCommand(similarityCommand(global));
  program.addCommand(bnstatsCommand(global));
  program
    .command('info')
    .description('what this build and machine can do: SIMD level, threads, CUDA (the GPU, its memory, the runtime, the kernels built; the onnxruntime CUDA provider), the addon file in use')
    .action(() => {
      global.print(JSON.stringify({ ...capabilities(), onnxruntimeCuda: providerStatus('cuda') }, null, 2));
    });
  program.helpCommand('help [command]', 'display help for a command');
  polishHelp(program);

  // One writer: the outputs' locks are taken before the action writes anything, and released by run() however it ends.
  program.hook('preAction', async (_program, action) => {
    held.push(await lockOutputs(outputLocks(action), commandPath(action)));
  });

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

/** What a full, read-only or refused disk means, in plain words. */
const PLAIN: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  EIO: 'the device reported an input/output error',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
};

/**
 * A file-system error that reached the CLI without being wrapped (a Node
 * errno error: ENOSPC, EACCES, ...) as one line naming the path and the cause
 * in plain words, never a stack trace; undefined for anything else.
 */
export function fileSystemError(e: unknown): string | undefined {
  const err = e as NodeJS.ErrnoException | undefined;
  if (!err || typeof err !== 'object' || typeof err.code !== 'string' || typeof err.syscall !== 'string') return undefined;
  const what = PLAIN[err.code] ?? err.code;
  return `${err.path ?? 'a file'}: could not ${err.syscall} it: ${what} (${err.message})`;
}

/** Runs the CLI; returns the exit code (0 ok, 1 error, 2 usage). */
export async function run(argv: string[]): Promise<number> {
  const global: GlobalOptions = { print: (line) => process.stdout.write(`${line}\n`) };
  const held: Array<() => Promise<void>> = [];
  const program = buildProgram(global, held);
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
      // Stopped by SIGTERM/SIGINT (cli/signals.ts): 143 or 130, as a shell reports a signal.
      if (e.code === 'E_ABORTED' && typeof e.detail?.exitCode === 'number') return e.detail.exitCode;
      return e.code === 'E_ARGUMENT' ? 2 : 1;
    }
    const io = fileSystemError(e);
    if (io) {
      process.stderr.write(`genaug: error [E_IO]: ${io}\n`);
      return 1;
    }
    process.stderr.write(`genaug: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  } finally {
    for (const release of held.splice(0)) await release().catch(() => undefined);
  }
}
