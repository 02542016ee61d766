/** `tsns run`'s options from util-linux unshare(1): the same names, forms and meanings. */
import { NAMESPACES } from '../namespaces';
import type { RunAllOptions } from '../run';
import { oneOf, UsageError } from './args';
import { flag, seconds, valued, type RunOpt } from './run-state';

type Ranges = 'mapUsers' | 'mapGroups';

// Ranges keep their command-line order, --map-auto's and --map-subids' among them, as unshare writes them.
function mapRange(o: RunAllOptions, key: Ranges, value: string): void {
  o[key] = [...(o[key] ?? []), value];
}

function mapBoth(o: RunAllOptions, word: string): void {
  mapRange(o, 'mapUsers', word);
  mapRange(o, 'mapGroups', word);
}

export const UNSHARE_OPTIONS: RunOpt[] = [

  ...NAMESPACES.map((ns): RunOpt => ({
    long: ns.name, short: ns.short, arg: 'optional', metavar: 'FILE',
    help: `new ${ns.what} namespace${ns.name === 'pid' ? '; the command is its PID 1' : ns.name === 'time' ? ' (the child unshares it, then forks the command)' : ''}`,
    set: (s, v) => (s.options[ns.name] = v ?? true),
  })),
  flag('all', 'every namespace above', (o) => (o.all = true)),
  flag('map-root-user', 'map your uid and gid to root inside (implies --user)', (o) => (o.mapRootUser = true), 'r'),
  flag('map-current-user', 'map your uid and gid to themselves inside (implies --user)', (o) => (o.mapCurrentUser = true), 'c'),
  valued('map-user', 'UID|NAME', 'map your uid to UID inside (implies --user)', (s, v) => (s.options.mapUser = v)),
  valued('map-group', 'GID|NAME', 'map your gid to GID inside (implies --user)', (s, v) => (s.options.mapGroup = v)),
  valued('map-users', 'INNER:OUTER:COUNT|auto|subids|all', 'map a uid range (repeatable; without root through newuidmap and /etc/subuid)',
    (s, v) => mapRange(s.options, 'mapUsers', v)),
  valued('map-groups', 'INNER:OUTER:COUNT|auto|subids|all', 'map a gid range (repeatable; without root through newgidmap and /etc/subgid)',
    (s, v) => mapRange(s.options, 'mapGroups', v)),
  flag('map-auto', 'map your first /etc/subuid and /etc/subgid ranges from 0 (implies --user)', (o) => mapBoth(o, 'auto')),
  flag('map-subids', 'map your first /etc/subuid and /etc/subgid ranges as themselves (implies --user)', (o) => mapBoth(o, 'subids')),
  valued('setgroups', 'allow|deny', 'whether setgroups(2) is allowed in the user namespace',
    (s, v) => (s.options.setgroups = oneOf('setgroups', v, ['allow', 'deny'] as const))),
  valued('setuid', 'UID', 'uid the command runs as inside', (s, v) => (s.options.setuid = v), 'S'),
  valued('setgid', 'GID', 'gid the command runs as inside (drops supplementary groups)', (s, v) => (s.options.setgid = v), 'G'),
  flag('keep-caps', 'keep the user namespace\'s capabilities across exec, as ambient capabilities', (o) => (o.keepCaps = true)),
  valued('hostname', 'NAME', 'set the hostname inside (implies --uts)', (s, v) => (s.options.hostname = v)),
  valued('domainname', 'NAME', 'set the NIS domain name inside (implies --uts)', (s, v) => (s.options.domainname = v)),
  { long: 'mount-binfmt', arg: 'optional', metavar: 'DIR', help: 'mount binfmt_misc on DIR, default /proc/sys/fs/binfmt_misc with a new /proc (implies --user, --mount)',
    set: (s, v) => (s.options.mountBinfmt = v ?? true) },
  valued('load-interp', 'RULE', 'register a binfmt_misc interpreter :name:type:offset:magic:mask:interpreter:flags (implies --mount-binfmt)',
    (s, v) => (s.options.loadInterp = v), 'l'),
  { long: 'mount-proc', arg: 'optional', metavar: 'DIR', help: 'mount a new proc on DIR, default /proc (implies --mount)', set: (s, v) => (s.options.mountProc = v ?? true) },
  valued('propagation', 'MODE', 'private|shared|slave|unchanged for / in the new mount namespace (default private)',
    (s, v) => (s.options.propagation = oneOf('propagation', v, ['private', 'shared', 'slave', 'unchanged'] as const))),
  valued('root', 'DIR', 'chroot to DIR before running the command', (s, v) => (s.options.root = v), 'R'),
  valued('wd', 'DIR', 'working directory of the command', (s, v) => (s.options.wd = v), 'w'),
  valued('monotonic', 'SECS', 'CLOCK_MONOTONIC offset in the new time namespace (implies --time)', (s, v) => (s.options.monotonic = seconds('monotonic', v))),
  valued('boottime', 'SECS', 'CLOCK_BOOTTIME offset in the new time namespace (implies --time)', (s, v) => (s.options.boottime = seconds('boottime', v))),
  valued('env', 'NAME=VALUE', 'set a variable for the command (repeatable)', (s, v) => {
    const eq = v.indexOf('=');
    if (eq < 1) throw new UsageError(`--env needs NAME=VALUE, not '${v}'`);
    s.options.env = { ...s.options.env, [v.slice(0, eq)]: v.slice(eq + 1) };
  }),
  flag('clear-env', 'start the command with an empty environment (plus --env)', (o) => (o.clearEnv = true)),
  { long: 'kill-child', arg: 'optional', metavar: 'SIGNAL', help: 'when tsns dies, the command gets SIGNAL (default SIGKILL)', set: (s, v) => (s.options.killChild = v ?? true) },
  flag('forward-signals', 'pass SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 on to the command', (o) => (o.forwardSignals = true)),
  flag('init', 'a minimal init as PID 1 reaps orphans and forwards signals (implies --pid)', (o) => (o.init = true)),
  flag('fork', 'accepted for unshare compatibility: tsns always runs the command as a child', () => {}, 'f'),
];
