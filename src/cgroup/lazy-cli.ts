/**
 * lazy.ts as the CLI's bundle has it: the cgroup machinery is
 * dist/cgroup.cjs, required on first use (scripts/build.mjs).
 */
type Machinery = typeof import('./index');

let loaded: Machinery | undefined;

export function cgroups(): Machinery {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (loaded ??= require('./cgroup.cjs') as Machinery);
}

/** The machinery if a run has loaded it, else undefined (then nothing of it can be pending). */
export function loadedCgroups(): Machinery | undefined {
  return loaded;
}
