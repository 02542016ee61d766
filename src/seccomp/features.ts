/**
 * seccompFeatures(): the `linux.seccomp` section of an OCI runtime's
 * features.json (`runc features`), from what works here: the actions the
 * kernel has (and libseccomp can compile), the operators, the architectures
 * libseccomp knows, the flags tsns takes, and those the kernel accepts.
 */
import { seccompCompiler, type SeccompCompiler } from '../native';
import { ACTIONS, ARCHES, libseccompArchName, OPERATORS, PROFILE_FLAGS, SECCOMP_FLAG, type Action } from './tables';

export interface SeccompFeatures {
  enabled: boolean;
  actions: string[];
  operators: string[];
  archs: string[];
  knownFlags: string[];
  supportedFlags: string[];
}

/** The compiler, or null when tsns was built without libseccomp (or it is not installed). */
function tryCompiler(): SeccompCompiler | null {
  try {
    return seccompCompiler();
  } catch {
    return null;
  }
}

export function seccompFeatures(lib: SeccompCompiler | null = tryCompiler()): SeccompFeatures {
  const knownFlags = Object.keys(PROFILE_FLAGS);
  if (!lib) return { enabled: false, actions: [], operators: [], archs: [], knownFlags, supportedFlags: [] };
  const kernelTakes = (flags: number) => lib.query(3, flags) === 1;
  const has = (a: Action) => lib.query(4, ACTIONS[a]) === 1 && (a !== 'SCMP_ACT_NOTIFY' || kernelTakes(SECCOMP_FLAG.NEW_LISTENER));
  const supportedFlags = knownFlags.filter((f) => {
    const bit = PROFILE_FLAGS[f] || SECCOMP_FLAG.TSYNC;
    return kernelTakes(bit === SECCOMP_FLAG.WAIT_KILLABLE_RECV ? bit | SECCOMP_FLAG.NEW_LISTENER : bit);
  });
  return {
    enabled: true,
    actions: (Object.keys(ACTIONS) as Action[]).filter(has),
    operators: Object.keys(OPERATORS),
    archs: ARCHES.filter((a) => lib.arch(libseccompArchName(a)) !== 0),
    knownFlags,
    supportedFlags,
  };
}
