/** What --dry-run prints: a plan as text for people, or as JSON for programs. */
import { formatIdMap, type IdMapEntry } from '../idmap';
import { describeOp } from '../sandbox';
import type { EnterPlan } from './enter';
import type { PlanSeccompProfile } from '../seccomp/plan';
import type { Plan } from './run';

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function flagsText(flags: number, names: string[]): string {
  return `${hex(flags)}${names.length ? ` ${names.join('|')}` : ''}`;
}

/** Shell-quote for display, so the printed command can be pasted back. */
function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** `key:` padded, then the value: one line each. */
function rows(): { row(k: string, v: string): void; text(): string } {
  const lines: string[] = [];
  return {
    row: (k, v) => lines.push(`${(k ? `${k}:` : '').padEnd(12)}${v}`),
    text: () => `${lines.join('\n')}\n`,
  };
}

function seccompText(plan: Plan): string {
  const counts = plan.seccomp.map((p) => p.instructions);
  const one = counts.length === 1;
  const when = plan.seccomp.some((p) => p.early) ? 'before privileges are dropped (no no_new_privs)' : 'just before exec';
  return `${one ? 'a program' : `${counts.length} programs`} of ${counts.join(', ')} instruction${counts.length === 1 && counts[0] === 1 ? '' : 's'}, ` +
    `loaded ${one ? '' : 'in that order '}${when}`;
}

/** A profile's summary: what it does, for whom, and what was left out. */
function profileLines(p: PlanSeccompProfile): string[] {
  const caps = p.capabilities.length;
  return [
    `profile ${p.source}: default ${p.defaultAction}, ${p.rules} rule${p.rules === 1 ? '' : 's'} on ${p.syscalls} system call${p.syscalls === 1 ? '' : 's'}, ` +
      `architectures ${p.architectures.length ? p.architectures.join(' ') : '(native only)'}`,
    `judged for ${caps === 0 ? 'no capabilities' : caps > 14 ? `${caps} capabilities` : p.capabilities.join(' ')}` +
      `${p.dropped ? `; ${p.dropped} conditional group${p.dropped === 1 ? '' : 's'} left out` : ''}`,
    ...(p.skipped.length ? [`unknown to libseccomp ${p.libseccomp}, skipped: ${p.skipped.join(' ')}`] : []),
    `flags ${p.flags.length ? p.flags.join('|') : 'none'}${p.listenerPath ? `; notifications to the agent at ${p.listenerPath}` : ''}`,
  ];
}

/** What `tsns run --dry-run` prints. */
export function describePlan(plan: Plan): string {
  const { row, text } = rows();
  const mapText = (m: IdMapEntry[], helper: string | null) =>
    `${formatIdMap(m).trim().replace(/\n/g, '; ')}${helper ? ` (through ${helper})` : ''}`;
  row('namespaces', plan.namespaces.length ? plan.namespaces.join(' ') : '(none: the command shares all of tsns\'s)');
  row('clone', flagsText(plan.cloneFlags, plan.cloneFlagNames));
  if (plan.unshareFlags) row('unshare', `${flagsText(plan.unshareFlags, plan.unshareFlagNames)} in the child, then fork the command`);
  if (plan.uidMap) row('uid_map', mapText(plan.uidMap, plan.uidMapHelper ? 'newuidmap' : null));
  if (plan.gidMap) row('gid_map', mapText(plan.gidMap, plan.gidMapHelper ? 'newgidmap' : null));
  if (plan.setgroups) row('setgroups', plan.setgroups);
  if (plan.hostname !== null) row('hostname', plan.hostname);
  if (plan.domainname !== null) row('domainname', plan.domainname);
  if (plan.monotonic !== null) row('monotonic', `${plan.monotonic} s`);
  if (plan.boottime !== null) row('boottime', `${plan.boottime} s`);
  for (const m of plan.mounts) row('mount', m.description);
  if (plan.binfmt?.early) row('binfmt', `register '${plan.binfmt.interp}' in /proc/sys/fs/binfmt_misc before the root changes`);
  if (plan.root !== null) row('root', plan.root);
  if (plan.wd !== null) row('wd', plan.wd);
  if (plan.binfmt) row('mount', `binfmt_misc on ${plan.binfmt.dir}${plan.binfmt.interp !== null && !plan.binfmt.early ? `, register '${plan.binfmt.interp}'` : ''}`);
  if (plan.setgid !== null) row('setgid', String(plan.setgid));
  if (plan.setuid !== null) row('setuid', String(plan.setuid));
  if (plan.keepCaps) row('caps', 'kept across exec (ambient)');
  if (plan.supervisor === 'init') row('init', 'PID 1 reaps orphans and forwards signals; the command is PID 2');
  if (plan.filesystem.length) row('root', 'a new tmpfs, built in this order, then pivot_root:');
  for (const o of plan.filesystem) row('  sandbox', describeOp(o));
  if (plan.loUp) row('net', 'bring lo up');
  if (plan.noNewPrivs) row('privileges', 'no new privileges (PR_SET_NO_NEW_PRIVS)');
  if (plan.newSession) row('session', 'new session (setsid)');
  for (const line of plan.seccompProfile ? profileLines(plan.seccompProfile) : []) row('seccomp', line);
  if (plan.seccomp.length) row('seccomp', seccompText(plan));
  if (plan.capKeep !== null) row('caps', BigInt(plan.capKeep) === 0n ? 'all dropped' : `keep mask 0x${BigInt(plan.capKeep).toString(16)}`);
  if (plan.killSignal !== null) row('kill-child', `signal ${plan.killSignal} when tsns dies`);
  if (plan.cgroup) plan.cgroup.description.forEach((l, i) => row(i === 0 ? 'cgroup' : '', l));
  row('command', `${plan.argv.map(quote).join(' ')}${plan.loginShell ? ` (login shell ${plan.file})` : ''}`);
  return text();
}

/** The plan as `tsns run --dry-run --json` prints it: stable keys, flags as a hex string too. */
export function planToJson(plan: Plan): Record<string, unknown> {
  // The programs' instruction counts: their bytes are no reading for a person.
  return {
    ...plan, seccomp: plan.seccomp.map((p) => p.instructions), cloneFlagsHex: hex(plan.cloneFlags), unshareFlagsHex: hex(plan.unshareFlags),
  };
}

/** What `tsns enter --dry-run` prints. */
export function describeEnterPlan(plan: EnterPlan): string {
  const { row, text } = rows();
  row('target', plan.target === null ? '(none: namespace files only)' : `pid ${plan.target}`);
  if (plan.joins.length === 0) row('join', '(nothing: tsns already shares every namespace asked for)');
  const via = { parent: ' (the user namespace that owns it)', socket: ' (the network namespace of that socket)' };
  for (const j of plan.joins) row('join', `${j.namespace.padEnd(7)}${j.path}${j.via ? via[j.via] : ''}`);
  if (plan.shared.length) row('shared', `${plan.shared.join(' ')} (the same as tsns's: not joined)`);
  if (plan.noFork && plan.joins.some((j) => j.namespace === 'pid')) row('fork', 'none (-F): the command stays outside the pid namespace, its children are in it');
  else if (plan.joins.some((j) => j.namespace === 'pid' || j.namespace === 'time')) {
    row('fork', 'once more, so that the command is inside the pid/time namespace');
  }
  if (plan.rootFromTarget) row('root', `the target's (/proc/${plan.target}/root)`);
  else if (plan.root !== null) row('root', plan.root);
  if (plan.wdFromTarget) row('wd', `the target's (/proc/${plan.target}/cwd)`);
  else if (plan.wd !== null) row('wd', `${plan.wd === '.' ? 'where tsns is' : plan.wd} (opened before joining)`);
  if (plan.wdns !== null) row('wd', `${plan.wdns} (after joining)`);
  if (plan.setgid !== null) row('setgid', String(plan.setgid));
  if (plan.setuid !== null) row('setuid', String(plan.setuid));
  if (plan.keepCaps) row('caps', 'kept across exec (ambient)');
  if (plan.environment === 'target') row('env', `the target's (/proc/${plan.target}/environ)`);
  row('command', plan.argv.map(quote).join(' '));
  return text();
}

/** The plan as `tsns enter --dry-run --json` prints it. */
export function enterPlanToJson(plan: EnterPlan): Record<string, unknown> {
  return { ...plan };
}
