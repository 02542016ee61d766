/**
 * The cgroup machinery, for the code that uses it only when a run asks for
 * a cgroup. Here it is simply imported (the library, the tests); the CLI's
 * bundle puts lazy-cli.ts in this file's place (scripts/build.mjs), which
 * loads the machinery from a bundle of its own on first use, so that a
 * `tsns run` without cgroup options parses none of it.
 */
import * as machinery from './index';

export function cgroups(): typeof machinery {
  return machinery;
}

/** The machinery if a run may have used it (here: always), else undefined. */
export function loadedCgroups(): typeof machinery | undefined {
  return machinery;
}
