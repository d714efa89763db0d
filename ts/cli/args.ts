/** Argument parsers for commander options: each rejects bad input with a clear E_ARGUMENT error. */
import { InvalidArgumentError, Option, type Command } from 'commander';

export interface GlobalOptions {
  /** Prints a result line on stdout (suppressed by --json consumers later). */
  print: (line: string) => void;
}

export function intArg(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got '${value}'.`);
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be in [${min}, ${max}], got ${n}.`);
    return n;
  };
}

export function numberArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got '${value}'.`);
    return n;
  };
}

/**
 * Puts a command's options under headings in its --help, in the order given
 * (options named nowhere, such as --help, stay under "Options:"). Throws on a
 * name the command does not have, so a renamed option cannot drop out silently.
 */
export function groupOptions(cmd: Command, groups: ReadonlyArray<readonly [heading: string, longNames: readonly string[]]>): Command {
  for (const [heading, names] of groups) {
    for (const name of names) {
      const o = cmd.options.find((x) => x.long === name);
      if (!o) throw new Error(`${cmd.name()}: no option ${name} to put under '${heading}'`);
      o.helpGroup(heading);
    }
  }
  return cmd;
}

/**
 * --device auto|cpu|cuda for the commands with a CUDA path (see
 * ts/native/device.ts): cpu by default, so outputs never depend on whether a
 * GPU exists; auto takes CUDA when it is usable; cuda fails with
 * E_CUDA_UNAVAILABLE naming why when it is not.
 */
export function deviceOption(what = 'the hot path', withDefault = true): Option {
  const o = new Option('--device <d>', `where ${what} runs: cpu, cuda (E_CUDA_UNAVAILABLE when this build or machine has none; see genaug info) or auto (cuda when usable, else cpu)`)
    .choices(['auto', 'cpu', 'cuda']);
  return withDefault ? o.default('cpu') : o;
}
