/**
 * Which cgroup hierarchies this machine has, which controllers live where,
 * and where our own cgroup is in each: read from /proc/self/mountinfo,
 * /proc/cgroups and /proc/self/cgroup, never from a fixed path. The parsers
 * are pure (they take the files' text); detectLayout() reads the files.
 *
 * Modes, as the kernel allows them: 'v2' (one unified hierarchy), 'v1' (one
 * hierarchy per controller or group of co-mounted ones) and 'hybrid' (v1
 * controllers plus a cgroup2 mount, often /sys/fs/cgroup/unified, which may
 * itself carry the controllers no v1 hierarchy took). The `0::/` line of
 * /proc/self/cgroup exists in every mode, so it says nothing about v2.
 */
import { existsSync, readFileSync } from 'node:fs';

/** A cgroup or cgroup2 line of /proc/self/mountinfo. */
export interface CgroupMount {
  /** major:minor of the superblock: bind mounts of one hierarchy share it */
  device: string;
  /** the path inside the hierarchy that is mounted (mountinfo's 4th field) */
  root: string;
  mountpoint: string;
  fstype: 'cgroup' | 'cgroup2';
  superOptions: string[];
}

/** A line of /proc/cgroups. */
export interface KnownController {
  name: string;
  /** the v1 hierarchy's ID; 0 when no v1 hierarchy has it (it may be on v2) */
  hierarchy: number;
  enabled: boolean;
}

/** A line of /proc/self/cgroup: `ID:controllers:path`. */
export interface Membership {
  id: number;
  /** the v1 hierarchy's controllers (and `name=X` for a named one); empty for v2 */
  controllers: string[];
  path: string;
}

export interface Hierarchy {
  version: 1 | 2;
  /** the v1 hierarchy ID (first field of /proc/self/cgroup); 0 for v2 */
  id: number;
  /** v1: the controllers mounted together (`name=systemd` for a named hierarchy); v2: those our cgroup offers */
  controllers: string[];
  /** v2: those the mount's root offers (what a cgroup placed from the root can have); v1: as controllers */
  rootControllers: string[];
  mountpoint: string;
  root: string;
  /** our cgroup in this hierarchy, as /proc/self/cgroup has it */
  own: string;
  /** that cgroup's directory; null when it lies outside what is mounted (a cgroup namespace's view) */
  ownDir: string | null;
}

export type CgroupMode = 'v1' | 'v2' | 'hybrid' | 'none';

export interface CgroupLayout {
  mode: CgroupMode;
  /** the v1 hierarchies, then the v2 one */
  hierarchies: Hierarchy[];
  v2: Hierarchy | null;
  known: KnownController[];
  /** the cgroup2 mount has nsdelegate */
  nsdelegate: boolean;
  /** systemd runs as init (/run/systemd/system exists): `slice:prefix:name` paths are its */
  systemd: boolean;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const before = line.slice(0, sep).split(' ');
    const [fstype, , superText = ''] = line.slice(sep + 3).split(' ');
    if ((fstype !== 'cgroup' && fstype !== 'cgroup2') || before.length < 5) continue;
    mounts.push({
      device: before[2]!,
      root: unescape(before[3]!),
      mountpoint: unescape(before[4]!),
      fstype,
      superOptions: superText.split(','),
    });
  }
  return mounts;
}

export function parseProcCgroups(text: string): KnownController[] {
  const out: KnownController[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [name, hierarchy, , enabled] = line.split(/\s+/);
    if (name) out.push({ name, hierarchy: Number(hierarchy), enabled: enabled === '1' });
  }
  return out;
}

export function parseProcSelfCgroup(text: string): Membership[] {
  const out: Membership[] = [];
  for (const line of text.split('\n')) {
    const a = line.indexOf(':');
    const b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const controllers = line.slice(a + 1, b);
    out.push({ id: Number(line.slice(0, a)), controllers: controllers ? controllers.split(',') : [], path: line.slice(b + 1) });
  }
  return out;
}

/**
 * The directory of cgroup `path` under a mount of `root` at `mountpoint`,
 * or null when the path is not inside what is mounted. Paths in a cgroup
 * namespace look like `/../..` from outside it: never joined blindly.
 */
export function dirOf(mountpoint: string, root: string, path: string): string | null {
  if (path.split('/').includes('..') || root.split('/').includes('..')) return null;
  const base = mountpoint.replace(/\/+$/, '');
  if (root === '/') return path === '/' ? mountpoint : `${base}${path}`;
  if (path === root) return mountpoint;
  return path.startsWith(`${root}/`) ? `${base}${path.slice(root.length)}` : null;
}

/** Of several mounts of one hierarchy, the one that shows our cgroup: root `/`, or a prefix of our path. */
function pickMount(mounts: CgroupMount[], own: string | undefined): CgroupMount {
  const shows = (m: CgroupMount) => own !== undefined && dirOf(m.mountpoint, m.root, own) !== null;
  return mounts.find((m) => m.root === '/' && shows(m)) ?? mounts.find(shows) ?? mounts.find((m) => m.root === '/') ?? mounts[0]!;
}

function groupByDevice(mounts: CgroupMount[]): CgroupMount[][] {
  const groups = new Map<string, CgroupMount[]>();
  for (const m of mounts) groups.set(m.device, [...(groups.get(m.device) ?? []), m]);
  return [...groups.values()];
}

/** The controllers a v1 mount carries: the super options that name one, and `name=X`. */
function mountControllers(m: CgroupMount, known: ReadonlySet<string>): string[] {
  return m.superOptions.filter((o) => known.has(o) || o.startsWith('name='));
}

export interface LayoutSources {
  mountinfo: string;
  cgroups: string;
  self: string;
  /** a file's text, or null: used for cgroup2's cgroup.controllers */
  readFile(path: string): string | null;
  systemd: boolean;
}

function v1Hierarchies(mounts: CgroupMount[], known: KnownController[], self: Membership[]): Hierarchy[] {
  const names = new Set(known.map((k) => k.name));
  const out: Hierarchy[] = [];
  for (const group of groupByDevice(mounts.filter((m) => m.fstype === 'cgroup'))) {
    const controllers = mountControllers(group[0]!, names);
    if (controllers.length === 0) continue;
    const member = self.find((s) => s.id !== 0 && s.controllers.length === controllers.length && controllers.every((c) => s.controllers.includes(c)));
    const m = pickMount(group, member?.path);
    const id = member?.id ?? known.find((k) => controllers.includes(k.name))?.hierarchy ?? -1;
    const own = member?.path ?? '/';
    out.push({ version: 1, id, controllers, rootControllers: controllers, mountpoint: m.mountpoint, root: m.root, own, ownDir: dirOf(m.mountpoint, m.root, own) });
  }
  return out;
}

function v2Hierarchy(mounts: CgroupMount[], self: Membership[], readFile: LayoutSources['readFile']): Hierarchy | null {
  const all = mounts.filter((m) => m.fstype === 'cgroup2');
  if (all.length === 0) return null;
  const own = self.find((s) => s.id === 0)?.path ?? '/';
  // Several cgroup2 mounts are one hierarchy (there is only one), however mounted.
  const m = pickMount(all, own);
  const ownDir = dirOf(m.mountpoint, m.root, own);
  const words = (dir: string) => (readFile(`${dir}/cgroup.controllers`) ?? '').split(/\s+/).filter(Boolean);
  const rootControllers = words(m.mountpoint);
  const controllers = ownDir === null || ownDir === m.mountpoint ? rootControllers : words(ownDir);
  return { version: 2, id: 0, controllers, rootControllers, mountpoint: m.mountpoint, root: m.root, own, ownDir };
}

/** The layout from the three files' text. */
export function buildLayout(src: LayoutSources): CgroupLayout {
  const mounts = parseMountinfo(src.mountinfo);
  const known = parseProcCgroups(src.cgroups);
  const self = parseProcSelfCgroup(src.self);
  const v1 = v1Hierarchies(mounts, known, self);
  const v2 = v2Hierarchy(mounts, self, src.readFile);
  const mode: CgroupMode = v1.length && v2 ? 'hybrid' : v1.length ? 'v1' : v2 ? 'v2' : 'none';
  const nsdelegate = mounts.some((m) => m.fstype === 'cgroup2' && m.superOptions.includes('nsdelegate'));
  return { mode, hierarchies: v2 ? [...v1, v2] : v1, v2, known, nsdelegate, systemd: src.systemd };
}

/**
 * The hierarchy that holds `controller`: its v1 hierarchy, else the v2 one
 * when our cgroup there offers it (or, `fromRoot`, the v2 mount's root:
 * for a cgroup placed by an absolute path); null when neither does.
 */
export function hierarchyOf(layout: CgroupLayout, controller: string, fromRoot = false): Hierarchy | null {
  const v1 = layout.hierarchies.find((h) => h.version === 1 && h.controllers.includes(controller));
  if (v1) return v1;
  return layout.v2 && (fromRoot ? layout.v2.rootControllers : layout.v2.controllers).includes(controller) ? layout.v2 : null;
}

/** Why a controller cannot be used here, for an error message. */
export function whyMissing(layout: CgroupLayout, controller: string, fromRoot = false): string {
  const k = layout.known.find((c) => c.name === controller);
  if (!k) return `the kernel has no ${controller} controller (not in /proc/cgroups)`;
  if (!k.enabled) return `the ${controller} controller is disabled (cgroup_disable= on the kernel command line)`;
  if (k.hierarchy !== 0) return `the ${controller} controller's v1 hierarchy is not mounted`;
  if (!layout.v2) return `the ${controller} controller is on no v1 hierarchy and there is no cgroup2 mount`;
  return `the ${controller} controller is not in ${fromRoot ? layout.v2.mountpoint : layout.v2.ownDir ?? layout.v2.mountpoint}/cgroup.controllers`;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** This process's layout, read from /proc. */
export function detectLayout(): CgroupLayout {
  return buildLayout({
    mountinfo: readOrNull('/proc/self/mountinfo') ?? '',
    cgroups: readOrNull('/proc/cgroups') ?? '',
    self: readOrNull('/proc/self/cgroup') ?? '',
    readFile: readOrNull,
    systemd: existsSync('/run/systemd/system'),
  });
}
