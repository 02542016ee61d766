import { describe, expect, it } from 'vitest';
import { parseEnter } from '../../src/cli/enter';
import { describeEnterPlan, enterPlanToJson } from '../../src/plan/describe';
import { makeEnterPlan, type EnterContext } from '../../src/plan/enter';

/** A target whose namespaces all differ from ours except its cgroup namespace. */
const ctx: EnterContext = {
  nsLink: (path) => (path.endsWith('/cgroup') ? 'cgroup:[1]' : path.startsWith('/proc/self/') ? `${path}:ours` : `${path}:theirs`),
  env: { SHELL: '/bin/zsh' },
};

describe('makeEnterPlan', () => {
  it('joins every namespace that differs, user first and mount last, skipping the shared ones', () => {
    const plan = makeEnterPlan(42, [], {}, ctx);
    expect(plan.joins.map((j) => j.namespace)).toEqual(['user', 'ipc', 'uts', 'net', 'pid', 'time', 'mount']);
    expect(plan.joins.every((j) => j.fromTarget && j.path === `/proc/42/ns/${j.namespace === 'mount' ? 'mnt' : j.namespace}`)).toBe(true);
    expect(plan.shared).toEqual(['cgroup']);
    // Joining a user namespace makes the command root there; a mount namespace, the target's cwd.
    expect(plan).toMatchObject({ setuid: 0, setgid: 0, wdFromTarget: true, rootFromTarget: false, file: '/bin/zsh', argv: ['/bin/zsh'] });
  });

  it('joins only what is named; files need no target', () => {
    const plan = makeEnterPlan(null, ['ip', 'a'], { net: '/run/netns/x', uts: '/tmp/uts' }, ctx);
    expect(plan.joins).toEqual([
      { namespace: 'uts', path: '/tmp/uts', fromTarget: false },
      { namespace: 'net', path: '/run/netns/x', fromTarget: false },
    ]);
    expect(plan).toMatchObject({ setuid: null, setgid: null, wdFromTarget: false, file: 'ip', argv: ['ip', 'a'] });
    expect(() => makeEnterPlan(null, [], { net: true }, ctx)).toThrow('--net needs a target (-t PID) or a namespace file (--net=FILE)');
    expect(() => makeEnterPlan(null, [], { net: '/x', targetEnv: true }, ctx)).toThrow('--env takes the environment of a target');
  });

  it('keeps credentials with --preserve-credentials, and -S/-G win', () => {
    expect(makeEnterPlan(42, [], { user: true, preserveCredentials: true }, ctx)).toMatchObject({ setuid: null, setgid: null });
    expect(makeEnterPlan(42, [], { user: true, setuid: 7 }, ctx)).toMatchObject({ setuid: 7, setgid: 0 });
  });

  it('prints as --dry-run shows it, and as JSON', () => {
    const plan = makeEnterPlan(42, ['sh', '-c', 'echo $$'], { net: true, pid: true, root: true, targetEnv: true }, ctx);
    expect(describeEnterPlan(plan)).toBe([
      'target:     pid 42',
      'join:       net    /proc/42/ns/net',
      'join:       pid    /proc/42/ns/pid',
      'fork:       once more, so that the command is inside the pid/time namespace',
      "root:       the target's (/proc/42/root)",
      'wd:         where tsns is (opened before joining)',
      "env:        the target's (/proc/42/environ)",
      "command:    sh -c 'echo $$'",
      '',
    ].join('\n'));
    expect(JSON.parse(JSON.stringify(enterPlanToJson(plan)))).toMatchObject({ target: 42, environment: 'target', joins: [{ namespace: 'net' }, { namespace: 'pid' }] });
  });
});

describe('parseEnter', () => {
  it('takes --dry-run and --json, the latter only with the former', () => {
    expect(parseEnter(['--dry-run', '--json', '42'])).toMatchObject({ target: 42, dryRun: true, json: true, command: [] });
    expect(() => parseEnter(['--json', '42'])).toThrow('--json goes with --dry-run');
  });
});
