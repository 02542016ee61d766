/** `tsns run`'s cgroup options: podman's and docker's names for the limits, and where the cgroup goes. */
import { flag, valued, type RunOpt } from './run-state';

export const CGROUP_OPTIONS: RunOpt[] = [
  valued('memory', 'BYTES', 'memory limit, with an optional b/k/m/g suffix (a cgroup of its own, removed when the command ends)', (s, v) => (s.options.memory = v)),
  valued('memory-swap', 'BYTES', 'memory plus swap limit (-1: unlimited swap; default twice --memory)', (s, v) => (s.options.memorySwap = v)),
  valued('memory-reservation', 'BYTES', 'memory soft limit', (s, v) => (s.options.memoryReservation = v)),
  valued('pids-limit', 'N', 'at most N processes and threads (-1: unlimited)', (s, v) => (s.options.pidsLimit = v)),
  valued('cpus', 'DEC', 'CPU time, in CPUs (e.g. 1.5): a CFS quota per 100 ms period', (s, v) => (s.options.cpus = v)),
  valued('cpu-shares', 'N', 'relative CPU weight (2-262144, 1024 by default)', (s, v) => (s.options.cpuShares = v)),
  valued('cpu-quota', 'USEC', 'CFS quota per period, microseconds (-1: unlimited)', (s, v) => (s.options.cpuQuota = v)),
  valued('cpu-period', 'USEC', 'CFS period, microseconds (1000-1000000)', (s, v) => (s.options.cpuPeriod = v)),
  valued('cpuset-cpus', 'LIST', 'CPUs the command may run on, e.g. 0-1,3', (s, v) => (s.options.cpusetCpus = v)),
  valued('cpuset-mems', 'LIST', 'memory nodes the command may use', (s, v) => (s.options.cpusetMems = v)),
  valued('blkio-weight', 'N', 'relative block I/O weight (10-1000)', (s, v) => (s.options.blkioWeight = v)),
  valued('cgroup-parent', 'PATH', 'make the command\'s cgroup under PATH (absolute: from each hierarchy\'s root; else from your own cgroup)',
    (s, v) => (s.options.cgroupParent = v)),
  valued('cgroup-path', 'PATH', 'put the command into the existing cgroup PATH instead, as it is', (s, v) => (s.options.cgroupPath = v)),
  flag('cgroup-optional', 'where the cgroup cannot be made (no permission), run without limits, saying so', (o) => (o.cgroupOptional = true)),
];
