/** A failure of the container's start (native stage, errno, index) → one line naming what failed. */
import { systemError, type TsnsError } from '../errors';
import { OP_SEP, TAG, type NativeFailure } from '../wire';
import type { OciConfig } from './config';

/**
 * A path of the config that cannot be resolved in the rootfs (a symlink
 * loop, a file on the way, proc on a symlink): runc refuses these with
 * its status 1, and so does tsns-oci (state.ts ociExitStatus).
 */
const REFUSALS = new Set(['oci-mount-path', 'oci-mount-on', 'oci-step-path']);
const PATH_HINT = 'paths in the rootfs are resolved as the container sees them (a symlink from the rootfs\'s /, never the host\'s): fix the rootfs or the config\'s path';

/** The device or link a failed OCI_STEP made (its wire value in `steps`), as config.json names it. */
function stepPath(c: OciConfig | null, steps: readonly (readonly [string, string])[], index: number): string {
  const value = steps.filter(([tag]) => tag === TAG.OCI_STEP)[index]?.[1] ?? '';
  const fields = value.slice(1).split(OP_SEP);
  if (value[0] === 'n' || value[0] === 'N') {
    const k = c?.linux.devices.findIndex((d) => d.path === fields[0]) ?? -1;
    return k >= 0 ? `linux.devices[${k}].path ${fields[0]}` : `the default device ${fields[0]}`;
  }
  return value[0] === 'l' || value[0] === 'L' ? `the symlink ${fields[1]}` : `step ${index}`;
}

export function explainStart(f: NativeFailure, c: OciConfig | null, args: readonly string[], steps: readonly (readonly [string, string])[] = []): TsnsError {
  const m = c?.mounts[f.index];
  const what: Record<string, string> = {
    'oci-rootfs': `cannot prepare the rootfs ${c?.root.path ?? ''}`,
    'oci-mount': m ? `cannot mount ${m.destination} (mounts[${f.index}], ${m.type ?? 'bind'} from ${m.source ?? m.type})` : `cannot mount mounts[${f.index}]`,
    'oci-mount-path': `cannot resolve mounts[${f.index}].destination ${m?.destination ?? ''} in the rootfs`,
    'oci-mount-on': `mounts[${f.index}].destination ${m?.destination ?? ''}: ${m?.type ?? 'proc'} must be mounted on an ordinary directory, reached through no symlink`,
    'oci-step-path': `cannot resolve ${stepPath(c, steps, f.index)} in the rootfs`,
    'oci-pivot': `cannot pivot_root into ${c?.root.path ?? 'the rootfs'}`,
    'oci-step': 'cannot prepare the rootfs (a device, masked or read-only path, sysctl, umask or oom_score_adj)',
    rlimit: `cannot set process.rlimits[${f.index}]${c?.process.rlimits[f.index] ? ` (${c.process.rlimits[f.index]!.type})` : ''}`,
    'exec-fifo': 'cannot open the exec fifo',
    groups: 'cannot set process.user.additionalGids',
    console: 'cannot set up the console (process.terminal)',
    'pidfd-socket': 'cannot send the process\'s pidfd to --pidfd-socket',
    'oci-start-hook': 'cannot prepare the startContainer hooks',
    'oci-caps': 'cannot set process.capabilities',
    lookup: `exec: "${args[0] ?? ''}": executable file not found in $PATH`,
    exec: `exec: "${args[0] ?? ''}"`,
    setns: `cannot join linux.namespaces (${f.index})`,
    uid_map: 'cannot write uid_map (linux.uidMappings)',
    gid_map: 'cannot write gid_map (linux.gidMappings)',
    newuidmap: 'newuidmap refused linux.uidMappings',
    newgidmap: 'newgidmap refused linux.gidMappings',
    setgroups: 'cannot write setgroups',
    sethostname: 'cannot set the hostname',
    setdomainname: 'cannot set the domainname',
    clone: 'cannot create the namespaces',
    setuid: 'cannot set process.user.uid',
    setgid: 'cannot set process.user.gid',
    seccomp: 'cannot load linux.seccomp',
    'cgroup-procs': 'cannot put the process in its cgroup',
    'cgroup-clone': 'cannot create the process in its cgroup',
    'session-keyring': 'cannot join the session keyring',
    'keyring-perm': 'cannot set the session keyring\'s permissions',
  };
  const hint: Record<string, string> = {
    lookup: 'process.args[0] must be a program in the rootfs (or on the PATH of process.env)',
    clone: 'rootless containers need a user namespace in linux.namespaces; see tsns-oci spec --rootless',
    'oci-pivot': 'a rootfs on a ramdisk cannot pivot: try --no-pivot',
    rlimit: 'raising a hard limit needs CAP_SYS_RESOURCE',
    'session-keyring': 'create --no-new-keyring keeps the caller\'s keyring; EDQUOT: this user has too many keys (sysctl kernel.keys.maxkeys, kernel.keys.maxbytes)',
    'oci-mount-path': PATH_HINT,
    'oci-step-path': PATH_HINT,
    'oci-mount-on': `make ${m?.destination ?? 'it'} a directory of the rootfs itself (not a symlink, nor below one)`,
  };
  const e = systemError(`cannot start container process: ${what[f.stage] ?? f.stage}`, f.code, f.stage, hint[f.stage]);
  return REFUSALS.has(f.stage) ? Object.assign(e, { ociStatus: 1 }) : e;
}
