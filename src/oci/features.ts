/** `tsns-oci features`: the runtime-spec features document, listing only what tsns-oci really does. */
import { CAPABILITIES } from '../capabilities';
import { detectLayout } from '../cgroup/detect';
import { seccompFeatures } from '../seccomp/features';
import { HOOK_NAMES } from './config';

const MOUNT_OPTIONS = [
  'async', 'atime', 'bind', 'defaults', 'dev', 'diratime', 'dirsync', 'exec', 'iversion', 'lazytime', 'loud', 'mand', 'noatime', 'nodev',
  'nodiratime', 'noexec', 'noiversion', 'nolazytime', 'nomand', 'norelatime', 'nostrictatime', 'nosuid', 'private', 'rbind', 'rdev', 'relatime',
  'remount', 'rexec', 'rnodev', 'rnoexec', 'rnosuid', 'ro', 'rprivate', 'rro', 'rrw', 'rshared', 'rslave', 'rsuid', 'runbindable', 'rw', 'shared',
  'silent', 'slave', 'strictatime', 'suid', 'sync', 'unbindable',
];

export function features(): Record<string, unknown> {
  const layout = detectLayout();
  const sc = seccompFeatures();
  return {
    ociVersionMin: '1.0.0',
    ociVersionMax: '1.2.0',
    hooks: [...HOOK_NAMES],
    mountOptions: MOUNT_OPTIONS,
    linux: {
      namespaces: ['cgroup', 'ipc', 'mount', 'network', 'pid', 'user', 'uts'],
      capabilities: CAPABILITIES.map((c) => `CAP_${c}`),
      cgroup: { v1: layout.hierarchies.some((h) => h.version === 1), v2: layout.v2 !== null, systemd: true, systemdUser: false, rdma: false },
      seccomp: sc,
      apparmor: { enabled: false },
      selinux: { enabled: false },
      intelRdt: { enabled: false },
      mountExtensions: { idmap: { enabled: false } },
    },
  };
}
