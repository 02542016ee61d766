/**
 * Pure: unshare's --mount-binfmt[=DIR] and -l/--load-interp (util-linux
 * 2.41): binfmt_misc mounted in the new mount namespace (the kernel gives
 * each user namespace its own since Linux 6.7) and an interpreter
 * registered there.
 */
import type { NamespaceName } from '../namespaces';
import { planError } from './identity';

export const PROC_BINFMT = '/proc/sys/fs/binfmt_misc';

export interface BinfmtPlan {
  /** where binfmt_misc is mounted, after proc */
  dir: string;
  /** what is written to DIR/register */
  interp: string | null;
  /** an interpreter with the F flag and --root: registered before the chroot, in /proc/sys/fs/binfmt_misc */
  early: boolean;
}

export interface BinfmtOptions {
  /** mount binfmt_misc on DIR (true: /proc/sys/fs/binfmt_misc, with a new /proc); implies mount and user */
  mountBinfmt?: boolean | string;
  /** register this binfmt_misc line (`:name:type:offset:magic:mask:interpreter:flags`); implies mountBinfmt */
  loadInterp?: string;
  mountProc?: boolean | string;
  root?: string;
}

/** The binfmt plan, the namespaces it needs added to `wanted`, and /proc mounted for the default place. */
export function planBinfmt<O extends BinfmtOptions>(options: O, wanted: Set<NamespaceName>): { options: O; binfmt: BinfmtPlan | null } {
  const { mountBinfmt, loadInterp } = options;
  if (!mountBinfmt && loadInterp === undefined) return { options, binfmt: null };
  if (mountBinfmt === '') throw planError('--mount-binfmt= needs a directory');
  if (loadInterp !== undefined && !/^(.).+\1/.test(loadInterp)) {
    throw planError(`--load-interp '${loadInterp}' is not a binfmt_misc rule`, 'write it as :name:type:offset:magic:mask:interpreter:flags, see binfmt_misc in the kernel\'s admin guide');
  }
  wanted.add('mount');
  wanted.add('user');
  const dir = typeof mountBinfmt === 'string' ? mountBinfmt : PROC_BINFMT;
  // As unshare: the default place lives in /proc, so a new proc comes with it.
  const withProc = dir === PROC_BINFMT && !options.mountProc ? { ...options, mountProc: '/proc' } : options;
  const flags = loadInterp?.slice(loadInterp.lastIndexOf(':') + 1) ?? '';
  const early = loadInterp !== undefined && flags.includes('F') && options.root !== undefined;
  return { options: withProc, binfmt: { dir, interp: loadInterp ?? null, early } };
}
