/** A failure of the container's start (native stage, errno, index) → one line naming what failed. */
import { systemError, type TsnsError } from '../errors';
import type { NativeFailure } from '../wire';
import type { OciConfig } from './config';

export function explainStart(f: NativeFailure, c: OciConfig | null, args: readonly string[]): TsnsError {
  const m = c?.mounts[f.index];
  const what: Record<string, string> = {
    'oci-rootfs': `cannot prepare the rootfs ${c?.root.path ?? ''}`,
    'oci-mount': m ? `cannot mount ${m.destination} (mounts[${f.index}], ${m.type ?? 'bind'} from ${m.source ?? m.type})` : `cannot mount mounts[${f.index}]`,
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
  };
  return systemError(`cannot start container process: ${what[f.stage] ?? f.stage}`, f.code, f.stage, hint[f.stage]);
}
