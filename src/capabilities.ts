/** Linux capability names and numbers (linux/capability.h), for --cap-drop/--cap-add. */
export const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const;

export const ALL_CAPS = (1n << 64n) - 1n;

/** 'CAP_NET_RAW', 'net_raw' or 'ALL' → a bit mask; undefined for an unknown name. */
export function capabilityMask(name: string): bigint | undefined {
  const upper = name.toUpperCase().replace(/^CAP_/, '');
  if (upper === 'ALL') return ALL_CAPS;
  const n = (CAPABILITIES as readonly string[]).indexOf(upper);
  return n < 0 ? undefined : 1n << BigInt(n);
}
