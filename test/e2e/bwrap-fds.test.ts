/**
 * bwrap's fd protocols and process rules, end to end as root and as 65534,
 * each next to the real bwrap where it is installed (same fds, same JSON
 * keys, same Cap* lines). The scripts run the same lines with TOOL set to
 * tsns or to bwrap.
 */
import { execa } from 'execa';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hasCommand, IS_ROOT, MODES, requireCommands, ROOT, USER, type Mode, type Run } from './helpers';

const HAS_TOOLS = requireCommands('unshare', 'setpriv');
const BWRAP = hasCommand('bwrap');
let dir = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tsns-bwrap-fds-'));
  // Both modes' scripts make their fifos and files here.
  chmodSync(dir, 0o1777);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Tool = 'tsns' | 'bwrap';

/** The command line of each tool, with the whole host visible (bwrap always makes a new root). */
function toolWords(tool: Tool, mode: Mode): string {
  if (tool === 'bwrap') return 'bwrap --dev-bind / /';
  const bin = mode === 'user' && IS_ROOT ? join(inject('stagedRoot'), 'bin', 'tsns.js') : join(ROOT, 'bin', 'tsns.js');
  return `${process.execPath} ${bin} run --bind / /`;
}

/** bash -c SCRIPT as the mode's user, with $TOOL, $BARE (tsns without a sandbox), $INIT (tsns's --init) and $D (a fresh directory). */
async function sh(tool: Tool, mode: Mode, script: string, timeout = 30_000): Promise<Run> {
  const d = mkdtempSync(join(dir, `${tool}-`));
  chmodSync(d, 0o777);
  const env = { ...process.env, INIT: tool === 'tsns' ? '--init' : '', TOOL: toolWords(tool, mode), BARE: toolWords(tool, mode).replace(/ --bind \/ \/$/, '').replace(/ --dev-bind \/ \/$/, ' --dev-bind / /'), D: d };
  const command = ['bash', '-c', script];
  const as = mode === 'user' && IS_ROOT ? ['setpriv', `--reuid=${USER.uid}`, `--regid=${USER.gid}`, '--clear-groups', '--', ...command] : command;
  const r = await execa(as[0]!, as.slice(1), { reject: false, env, cwd: '/', timeout, stdin: 'ignore' });
  return { stdout: String(r.stdout), stderr: String(r.stderr), exitCode: r.exitCode, signal: r.signal };
}

/** Both tools' runs of one script; bwrap's is null where it is not installed. */
async function both(mode: Mode, script: string): Promise<{ ours: Run; theirs: Run | null }> {
  const ours = await sh('tsns', mode, script);
  const theirs = BWRAP ? await sh('bwrap', mode, script) : null;
  return { ours, theirs };
}

/** JSON text with its numbers as N: the shape bwrap writes, byte for byte. */
const shape = (text: string) => text.replace(/\d+/g, 'N');

describe.runIf(HAS_TOOLS).each(MODES)('as %s', (mode: Mode) => {
  // The user namespace bwrap makes without setuid; tsns makes one too as 65534.
  const USERNS = mode === 'user' ? '--unshare-user' : '';

  it('--info-fd: {"child-pid", the new namespaces} as bwrap writes it, before the command goes on', async () => {
    const { ours, theirs } = await both(mode, `$TOOL ${USERNS} --unshare-pid --unshare-net --unshare-uts --unshare-ipc --info-fd 5 \\
      sh -c 'for n in ipc mnt net pid uts; do readlink /proc/self/ns/$n; done' 5>$D/info; echo rc=$?; cat $D/info`);
    expect(ours.stderr).toBe('');
    const [nsLines, info] = [ours.stdout.split('rc=0\n')[0]!, ours.stdout.split('rc=0\n')[1]!];
    const parsed = JSON.parse(info) as Record<string, number>;
    expect(Object.keys(parsed)).toEqual(['child-pid', 'ipc-namespace', 'mnt-namespace', 'net-namespace', 'pid-namespace', 'uts-namespace']);
    // The ids are the command's own namespaces.
    const inodes = nsLines.trim().split('\n').map((l) => Number(/\[(\d+)\]/.exec(l)![1]));
    expect(inodes).toEqual(Object.values(parsed).slice(1));
    expect(parsed['child-pid']).toBeGreaterThan(1);
    if (theirs) expect(shape(info)).toBe(shape(theirs.stdout.split('rc=0\n')[1]!));
  });

  it('--json-status-fd: the same object on one line, then {"exit-code"} in the shell encoding', async () => {
    const { ours, theirs } = await both(mode, `$TOOL ${USERNS} --unshare-uts --json-status-fd 5 sh -c 'exit 3' 5>$D/s1; echo rc=$?; cat $D/s1
      $TOOL ${USERNS} --json-status-fd 5 sh -c 'kill -TERM $$' 5>$D/s2; echo rc=$?; cat $D/s2`);
    const lines = ours.stdout.split('\n');
    expect(lines[0]).toBe('rc=3');
    expect(JSON.parse(lines[2]!)).toEqual({ 'exit-code': 3 });
    expect(lines[3]).toBe('rc=143');
    expect(JSON.parse(lines[5]!)).toEqual({ 'exit-code': 143 });
    expect(Object.keys(JSON.parse(lines[1]!))).toEqual(['child-pid', 'mnt-namespace', 'uts-namespace']);
    if (theirs) expect(shape(ours.stdout)).toBe(shape(theirs.stdout));
  });

  it('--block-fd: nothing runs before a byte comes, and the command does not get the fd', async () => {
    const { ours, theirs } = await both(mode, `mkfifo $D/f
      $TOOL ${USERNS} --block-fd 7 sh -c 'cat $D/marker; ls /proc/self/fd | grep -cx 7' 7<$D/f & exec 8>$D/f
      sleep 0.5; echo written > $D/marker; echo x >&8; exec 8>&-; wait $!; echo rc=$?`);
    expect(ours.stdout).toBe('written\n0\nrc=1');
    if (theirs) expect(theirs.stdout).toBe(ours.stdout);
  });

  it('--sync-fd: held open while the sandbox runs, closed when it ends; the command does not get it', async () => {
    const { ours, theirs } = await both(mode, `mkfifo $D/f
      $TOOL ${USERNS} --sync-fd 7 sh -c 'ls /proc/self/fd | grep -cx 7; sleep 1; echo ended > $D/ended' 7>$D/f &
      cat $D/f; cat $D/ended; wait $!; echo rc=$?`);
    // cat sees the end of the fifo only once the sandbox has ended.
    expect(ours.stdout).toBe('0\nended\nrc=0');
    if (theirs) expect(theirs.stdout).toBe(ours.stdout);
  });

  it('--lock-file: a read lock on the file, held by the sandbox (not the command) while it runs', async () => {
    const { ours, theirs } = await both(mode, `touch $D/lock; ino=$(stat -c %i $D/lock)
      $TOOL ${USERNS} --unshare-pid --lock-file $D/lock sh -c 'echo $$ > $D/cmd; sleep 1' &
      sleep 0.6; grep ":$ino " /proc/locks | awk '{print $2, $3, $4}'; holder=$(grep ":$ino " /proc/locks | awk '{print $5}')
      [ "$holder" != "$(cat $D/cmd)" ] && echo not-the-command; wait $!; echo rc=$?; grep -c ":$ino " /proc/locks`);
    expect(ours.stdout).toBe('POSIX ADVISORY READ\nnot-the-command\nrc=0\n0');
    if (theirs) expect(theirs.stdout).toBe(ours.stdout);
    const missing = await sh('tsns', mode, `$TOOL ${USERNS} --lock-file /no/such/lock true`);
    expect(missing.exitCode).toBe(125);
    expect(missing.stderr).toBe('tsns: cannot lock /no/such/lock (--lock-file): No such file or directory (ENOENT)\nhint: the file must exist in the sandbox: bind it there, or create it (--file)');
  });

  it('--userns-block-fd: the caller reads the child pid from --info-fd and writes the maps itself', async () => {
    const { ours, theirs } = await both(mode, `mkfifo $D/info $D/block
      $TOOL --unshare-user --info-fd 5 --userns-block-fd 6 sh -c 'cat /proc/self/uid_map /proc/self/gid_map | tr -s " "; id -u' 6<$D/block 5>$D/info &
      exec 7>$D/block; pid=$(sed -n 's/.*"child-pid": \\([0-9]*\\).*/\\1/p' $D/info)
      echo deny > /proc/$pid/setgroups; echo "0 $(id -u) 1" > /proc/$pid/uid_map; echo "0 $(id -g) 1" > /proc/$pid/gid_map
      echo go >&7; exec 7>&-; wait $!; echo rc=$?`);
    const id = mode === 'user' ? USER.uid : 0;
    expect(ours.stderr).toBe('');
    expect(ours.stdout).toBe(` 0 ${id} 1\n 0 ${id} 1\n0\nrc=0`);
    if (theirs) expect(theirs.stdout).toBe(ours.stdout);
  });

  // A user namespace with a pid namespace, and a user namespace nested in that one, kept by sleeps of the caller's.
  const HOLDERS = `unshare -U -r --fork --pid sh -c 'unshare -U sleep 30' & U=$!
    for i in $(seq 50); do S=$(echo $(cat /proc/$U/task/$U/children 2>/dev/null)); [ -n "$S" ] && I=$(echo $(cat /proc/$S/task/$S/children 2>/dev/null)); [ -n "$I" ] && [ "$(readlink /proc/$I/ns/user)" != "$(readlink /proc/$S/ns/user)" ] && break; sleep 0.1; done`;

  it('--userns FD joins a user namespace (the new ones belong to it); --userns2 FD switches after the setup', async () => {
    const { ours, theirs } = await both(mode, `${HOLDERS}
      [ "$(readlink /proc/self/ns/user)" != "$(readlink /proc/$S/ns/user)" ] && echo holder
      $TOOL --userns 5 --unshare-net sh -c 'readlink /proc/self/ns/user; id -u; readlink /proc/self/ns/net' 5</proc/$S/ns/user > $D/out
      echo rc=$?; [ "$(sed -n 1p $D/out)" = "$(readlink /proc/$S/ns/user)" ] && echo joined; sed -n 2p $D/out
      [ "$(sed -n 3p $D/out)" != "$(readlink /proc/$S/ns/net)" ] && echo own-net
      $TOOL --userns 5 --userns2 6 readlink /proc/self/ns/user 5</proc/$S/ns/user 6</proc/$I/ns/user > $D/out2
      echo rc=$?; [ "$(cat $D/out2)" = "$(readlink /proc/$I/ns/user)" ] && echo switched
      kill $I; wait`);
    expect(ours.stdout).toBe('holder\nrc=0\njoined\n0\nown-net\nrc=0\nswitched');
    if (theirs) expect(theirs.stdout).toBe(ours.stdout);
  });

  it('--pidns FD: the command is in that pid namespace', async () => {
    const { ours, theirs } = await both(mode, `${HOLDERS}
      $TOOL --userns 5 --pidns 6 sh -c 'readlink /proc/self/ns/pid; echo $$' 5</proc/$S/ns/user 6</proc/$S/ns/pid > $D/out
      echo rc=$?; [ "$(sed -n 1p $D/out)" = "$(readlink /proc/$S/ns/pid)" ] && echo joined; [ "$(sed -n 2p $D/out)" -lt 10 ] && echo low-pid
      kill $I; wait`);
    expect(ours.stdout).toBe('rc=0\njoined\nlow-pid');
    if (theirs) expect(theirs.stdout).toBe(ours.stdout);
  });

  it('--disable-userns: the command cannot create user namespaces; --assert-userns-disabled checks it', async () => {
    const { ours, theirs } = await both(mode, `$TOOL --unshare-user --disable-userns sh -c 'unshare -U true 2>/dev/null || echo refused; cat /proc/self/uid_map | tr -s " "'; echo rc=$?
      $TOOL --unshare-user --disable-userns --assert-userns-disabled true; echo rc=$?
      $TOOL --unshare-user --assert-userns-disabled true 2>/dev/null; echo rc=$?
      $TOOL --disable-userns true 2>&1; echo rc=$?`);
    const id = mode === 'user' ? USER.uid : 0;
    // Without root a sandbox is in a user namespace of its own, as bwrap's without setuid: --disable-userns alone is enough.
    const alone = mode === 'user' ? ['rc=0'] : ['tsns: --disable-userns requires --unshare-user', 'hint: add --unshare-user (or --user)', 'rc=125'];
    expect(ours.stdout.split('\n')).toEqual(['refused', ` ${id} ${id} 1`, 'rc=0', 'rc=0', 'rc=125', ...alone]);
    // bwrap exits 1 where tsns exits 125, with the same message.
    // bwrap checks before it implies its user namespace: it refuses even without root (tsns does not).
    const bwrapAlone = ['bwrap: --disable-userns requires --unshare-user', 'rc=1'];
    if (theirs) expect(theirs.stdout.split('\n')).toEqual(['refused', ` ${id} ${id} 1`, 'rc=0', 'rc=0', 'rc=1', ...bwrapAlone]);
    const failed = await sh('tsns', mode, '$TOOL --unshare-user --assert-userns-disabled true');
    expect(failed.stderr).toMatch(/^tsns: creation of new user namespaces was not disabled as requested: unshare\(CLONE_NEWUSER\) succeeded in the sandbox\nhint: /);
  });

  it('--disable-userns with -S/-G (or --uid/--gid): the command has those ids, as bwrap with --uid/--gid', async () => {
    // tsns's -S/-G switch inside the namespace tsns made; bwrap maps --uid/--gid there. The same ids result either way.
    const check = `sh -c 'id -u; id -g; unshare -U true 2>&- || echo refused'; echo rc=$?`;
    const ours = await sh('tsns', mode, `$TOOL --unshare-user -S 5 -G 7 --disable-userns ${check}
      $TOOL --unshare-user --uid 5 --gid 7 --disable-userns ${check}`);
    const want = ['5', '7', 'refused', 'rc=0'];
    expect({ out: ours.stdout.split('\n'), err: ours.stderr }).toEqual({ out: [...want, ...want], err: '' });
    if (BWRAP) expect((await sh('bwrap', mode, `$TOOL --unshare-user --uid 5 --gid 7 --disable-userns ${check}`)).stdout.split('\n')).toEqual(want);
  });

  it('--level-prefix: the error line is <3>, its hint <6> (bwrap 0.8 here lacks the option)', async () => {
    const r = await sh('tsns', mode, `$TOOL ${USERNS} --level-prefix --lock-file /no/such/lock true; echo rc=$?
      $TOOL --level-prefix --bogus-option 2>&1 | head -1`);
    expect(r.stderr.split('\n')).toEqual(['<3>tsns: cannot lock /no/such/lock (--lock-file): No such file or directory (ENOENT)',
      '<6>hint: the file must exist in the sandbox: bind it there, or create it (--file)']);
    expect(r.stdout.split('\n')[1]).toMatch(/^<3>tsns: /);
  });

  it('--die-with-parent: when the process that started tsns dies, tsns and the command die too', async () => {
    // The parent shell starts the tool, says its pid, and is killed; then tsns and the command must go (or be zombies: PID 1 here reaps no orphans).
    const script = (opt: string) => `bash -c '$TOOL ${USERNS} ${opt} sh -c "echo \\$\\$ > $D/cmd${opt.length}; exec sleep 60" & echo $! > $D/tool${opt.length}; wait' & P=$!
      for i in $(seq 50); do [ -s $D/cmd${opt.length} ] && break; sleep 0.1; done; kill -9 $P; sleep 1
      for p in $(cat $D/tool${opt.length}) $(cat $D/cmd${opt.length}); do s=$(awk '{print $3}' /proc/$p/stat 2>/dev/null); [ -z "$s" ] || [ "$s" = Z ] && echo gone || { echo alive; kill -9 $p; }; done`;
    const { ours, theirs } = await both(mode, `${script('--die-with-parent')}\n${script('')}`);
    // Without it, tsns and the command outlive tsns's parent.
    expect(ours.stdout).toBe('gone\ngone\nalive\nalive');
    if (theirs) expect(theirs.stdout).toBe(ours.stdout);
  });

  it("capabilities after --cap-drop/--cap-add are inheritable too (pI = pP = pE); a reaping PID 1 holds none", async () => {
    // bwrap's PID 1 is its init; tsns's is the command unless --init, as unshare has it.
    const { ours, theirs } = await both(mode, `$TOOL ${USERNS} $INIT --unshare-pid --proc /proc --cap-drop ALL --cap-add CAP_NET_RAW \\
      sh -c 'grep -E "^Cap(Inh|Prm|Eff|Amb)" /proc/self/status; grep -E "^Cap(Inh|Prm|Eff)" /proc/1/status'`);
    const caps = ['CapInh:\t0000000000002000', 'CapPrm:\t0000000000002000', 'CapEff:\t0000000000002000', 'CapAmb:\t0000000000002000'];
    const none = ['CapInh:\t0000000000000000', 'CapPrm:\t0000000000000000', 'CapEff:\t0000000000000000'];
    expect(ours.stdout.split('\n')).toEqual([...caps, ...none]);
    if (theirs) expect(theirs.stdout).toBe(ours.stdout);
    // tsns's own --init, the same.
    const init = await sh('tsns', mode, `$TOOL ${USERNS} --init --proc /proc --cap-drop ALL grep -E "^Cap(Inh|Prm|Eff)" /proc/1/status`);
    expect(init.stdout.split('\n')).toEqual(none);
  });

  it('--unshare-user-try and --unshare-cgroup-try: new ones where the kernel allows, none without a fuss where not', async () => {
    const { ours, theirs } = await both(mode, `$BARE --unshare-user-try --unshare-cgroup-try sh -c 'readlink /proc/self/ns/user /proc/self/ns/cgroup' > $D/new
      [ "$(sed -n 1p $D/new)" != "$(readlink /proc/self/ns/user)" ] && [ "$(sed -n 2p $D/new)" != "$(readlink /proc/self/ns/cgroup)" ] && echo both-new
      unshare -U -r sh -c 'echo 0 > /proc/sys/user/max_user_namespaces; u=$(readlink /proc/self/ns/user); $BARE --unshare-user-try readlink /proc/self/ns/user > $D/same; echo rc=$?; [ "$(cat $D/same)" = "$u" ] && echo same-user'`);
    expect(ours.stderr).toBe('');
    expect(ours.stdout).toBe('both-new\nrc=0\nsame-user');
    if (theirs) expect(theirs.stdout).toBe(ours.stdout);
  });
});

describe.runIf(HAS_TOOLS)('the library', () => {
  it('run() writes --json-status-fd objects to an fd it is given, and the info object', async () => {
    const { run } = await import('../../src/index');
    const file = join(dir, 'lib-status');
    writeFileSync(file, '');
    const { openSync } = await import('node:fs');
    const fd = openSync(file, 'w');
    const r = await run(['sh', '-c', 'exit 4'], { uts: true, ...(IS_ROOT ? {} : { mapRootUser: true }), jsonStatusFd: fd });
    expect(r.exitCode).toBe(4);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    expect(Object.keys(lines[0]!)).toEqual(['child-pid', 'mnt-namespace', 'uts-namespace']);
    expect(lines[0]!['child-pid']).toBe(r.pid);
    expect(lines[1]).toEqual({ 'exit-code': 4 });
  });
});
