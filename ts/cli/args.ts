/** Argument parsers for commander options: each rejects bad input with a clear E_ARGUMENT error. */
import { InvalidArgumentError, type Command } from 'commander';

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
