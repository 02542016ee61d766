/**
 * config.json (OCI runtime-spec 1.2) → an OciConfig, checked field by
 * field: a malformed file is one line with its line and column, an unknown
 * or unsupported field one line naming its JSON path. linux.resources and
 * linux.seccomp are kept as they are and judged by src/cgroup and
 * src/seccomp, which name their paths the same way.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { systemError, TsnsError } from '../errors';
import { JsonError, parseJson, type JsonValue } from '../seccomp/json';
import { Node } from './check';
import { MOUNT_FLAGS, mountOptions, type MountOptions } from './mount-options';

export const HOOK_NAMES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

export interface OciHook {
  path: string;
  args: string[];
  /** null: no "env" in config.json, and the hook gets its runner's environment, as runc's do */
  env: string[] | null;
  timeout: number | null;
}

export interface OciUser {
  uid: number;
  gid: number;
  umask: number | null;
  additionalGids: number[];
}

export interface OciCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

export interface OciRlimit {
  type: string;
  soft: bigint;
  hard: bigint;
}

export interface OciProcess {
  terminal: boolean;
  consoleSize: { height: number; width: number } | null;
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: OciCapabilities | null;
  rlimits: OciRlimit[];
  noNewPrivileges: boolean;
  oomScoreAdj: number | null;
}

export interface OciMount extends MountOptions {
  destination: string;
  type: string | null;
  source: string | null;
}

export interface OciNamespace {
  type: string;
  path: string | null;
}

export interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface OciDevice {
  type: 'c' | 'b' | 'p' | 'u';
  path: string;
  major: number;
  minor: number;
  fileMode: number | null;
  uid: number | null;
  gid: number | null;
}

export interface OciLinux {
  namespaces: OciNamespace[];
  uidMappings: OciIdMapping[];
  gidMappings: OciIdMapping[];
  devices: OciDevice[];
  cgroupsPath: string | null;
  resources: JsonValue | undefined;
  rootfsPropagation: string | null;
  maskedPaths: string[];
  readonlyPaths: string[];
  sysctl: Record<string, string>;
  seccomp: JsonValue | undefined;
  personality: number | null;
}

export interface OciConfig {
  ociVersion: string;
  root: { path: string; readonly: boolean };
  process: OciProcess;
  hostname: string | null;
  domainname: string | null;
  mounts: OciMount[];
  hooks: Record<HookName, OciHook[]>;
  annotations: Record<string, string>;
  linux: OciLinux;
}

const U32 = 0xffffffff;
const NAMESPACE_TYPES = ['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time'];
const NOT_HERE = 'tsns-oci runs Linux containers';

/** Read and parse a JSON file: a malformed one is one line with its path and position. */
export function readJsonFile(path: string, what = path): JsonValue {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw systemError(`cannot read ${what}`, err.errno ? -err.errno : 5, 'plan');
  }
  try {
    return parseJson(text);
  } catch (e) {
    if (e instanceof JsonError) throw new TsnsError(`${what}: malformed JSON: ${e.message}`, { stage: 'plan' });
    throw e;
  }
}

function hooks(n: Node): Record<HookName, OciHook[]> {
  n.object([...HOOK_NAMES]);
  const out = {} as Record<HookName, OciHook[]>;
  for (const name of HOOK_NAMES) {
    out[name] = n.child(name).array().map((h) => {
      h.object(['path', 'args', 'env', 'timeout']);
      const path = h.child('path').str();
      if (!isAbsolute(path)) h.child('path').fail(`must be an absolute path, not ${path}`);
      const timeout = h.child('timeout').optInt(1, 2 ** 31 - 1) ?? null;
      return { path, args: h.child('args').strings(), env: h.child('env').present ? h.child('env').strings() : null, timeout };
    });
  }
  return out;
}

export function parseProcess(n: Node, requireArgs = true): OciProcess {
  n.object(['terminal', 'consoleSize', 'user', 'args', 'env', 'cwd', 'capabilities', 'rlimits', 'noNewPrivileges', 'oomScoreAdj', 'apparmorProfile', 'selinuxLabel'], {
    commandLine: NOT_HERE,
    ioPriority: 'I/O priorities are not applied by tsns-oci',
    scheduler: 'scheduling policies are not applied by tsns-oci',
    execCPUAffinity: 'exec CPU affinity is not applied by tsns-oci',
  });
  if (!n.present) n.fail('missing');
  if (n.child('apparmorProfile').str('') !== '') n.child('apparmorProfile').fail('AppArmor is not supported by tsns-oci', 'remove the field, or use runc where AppArmor runs');
  if (n.child('selinuxLabel').str('') !== '') n.child('selinuxLabel').fail('SELinux labels are not supported by tsns-oci', 'remove the field, or use runc where SELinux runs');
  const u = n.child('user').object(['uid', 'gid', 'umask', 'additionalGids'], { username: NOT_HERE });
  const user: OciUser = {
    uid: u.child('uid').int(0, U32, 0),
    gid: u.child('gid').int(0, U32, 0),
    umask: u.child('umask').optInt(0, 0o777) ?? null,
    additionalGids: u.child('additionalGids').array().map((g) => g.int(0, U32)),
  };
  const args = n.child('args').strings();
  if (requireArgs && args.length === 0) n.child('args').fail('must name the command to run');
  const cwd = n.child('cwd').str(requireArgs ? undefined : '/');
  if (!isAbsolute(cwd)) n.child('cwd').fail(`must be an absolute path, not ${cwd}`);
  const c = n.child('capabilities');
  c.object(['bounding', 'effective', 'permitted', 'inheritable', 'ambient']);
  const capabilities = c.present
    ? { bounding: c.child('bounding').strings(), effective: c.child('effective').strings(), permitted: c.child('permitted').strings(),
      inheritable: c.child('inheritable').strings(), ambient: c.child('ambient').strings() }
    : null;
  const rlimits = n.child('rlimits').array().map((r) => {
    r.object(['type', 'soft', 'hard']);
    return { type: r.child('type').str(), soft: r.child('soft').u64(), hard: r.child('hard').u64() };
  });
  const cs = n.child('consoleSize').object(['height', 'width']);
  return {
    terminal: n.child('terminal').bool(),
    consoleSize: cs.present ? { height: cs.child('height').int(0, 65535), width: cs.child('width').int(0, 65535) } : null,
    user, args, env: n.child('env').strings(), cwd, capabilities, rlimits,
    noNewPrivileges: n.child('noNewPrivileges').bool(),
    oomScoreAdj: n.child('oomScoreAdj').optInt(-1000, 1000) ?? null,
  };
}

function mount(m: Node, bundle: string): OciMount {
  m.object(['destination', 'type', 'source', 'options'], { uidMappings: 'idmapped mounts are not supported by tsns-oci', gidMappings: 'idmapped mounts are not supported by tsns-oci' });
  const destination = m.child('destination').str();
  if (!isAbsolute(destination)) m.child('destination').fail(`must be an absolute path, not ${destination}`);
  const opts = mountOptions(m.child('options'));
  const type = m.child('type').optStr() ?? null;
  let source = m.child('source').optStr() ?? null;
  if (source !== null && (opts.flags & MOUNT_FLAGS.MS_BIND) !== 0 && !isAbsolute(source)) source = resolve(bundle, source);
  if ((opts.flags & MOUNT_FLAGS.MS_BIND) !== 0 && source === null) m.child('source').fail('a bind mount needs a source');
  if ((opts.flags & MOUNT_FLAGS.MS_BIND) === 0 && type === null) m.child('type').fail('a mount that is not a bind needs a type');
  return { destination, type, source, ...opts };
}

function idMappings(n: Node): OciIdMapping[] {
  return n.array().map((m) => {
    m.object(['containerID', 'hostID', 'size']);
    return { containerID: m.child('containerID').int(0, U32), hostID: m.child('hostID').int(0, U32), size: m.child('size').int(1, U32) };
  });
}

function linux(n: Node): OciLinux {
  n.object(['namespaces', 'uidMappings', 'gidMappings', 'devices', 'cgroupsPath', 'resources', 'rootfsPropagation', 'maskedPaths', 'readonlyPaths', 'sysctl', 'seccomp', 'personality', 'mountLabel'], {
    timeOffsets: 'time namespaces are not supported by tsns-oci yet',
    intelRdt: 'Intel RDT is not supported by tsns-oci',
    netDevices: 'moving network devices is not supported by tsns-oci',
    memoryPolicy: 'memory policies are not applied by tsns-oci',
  });
  if (n.child('mountLabel').str('') !== '') n.child('mountLabel').fail('SELinux mount labels are not supported by tsns-oci');
  const seen = new Set<string>();
  const namespaces = n.child('namespaces').array().map((ns) => {
    ns.object(['type', 'path']);
    const type = ns.child('type').str();
    if (!NAMESPACE_TYPES.includes(type)) ns.child('type').fail(`unknown namespace type ${type}`, `types: ${NAMESPACE_TYPES.join(', ')}`);
    if (seen.has(type)) ns.child('type').fail(`the ${type} namespace is listed twice`);
    if (type === 'time') ns.child('type').fail('time namespaces are not supported by tsns-oci yet');
    seen.add(type);
    const path = ns.child('path').str('') || null;
    if (path !== null && !isAbsolute(path)) ns.child('path').fail(`must be an absolute path, not ${path}`);
    return { type, path };
  });
  const devices = n.child('devices').array().map((d) => {
    d.object(['type', 'path', 'major', 'minor', 'fileMode', 'uid', 'gid']);
    const type = d.child('type').str();
    if (!['c', 'b', 'p', 'u'].includes(type)) d.child('type').fail(`unknown device type ${type} (c, b, u or p)`);
    const path = d.child('path').str();
    if (!path.startsWith('/dev/')) d.child('path').fail(`a device must be under /dev, not ${path}`);
    const needsNumbers = type !== 'p';
    return {
      type: type as OciDevice['type'], path,
      major: needsNumbers ? d.child('major').int(0, U32) : d.child('major').int(0, U32, 0),
      minor: needsNumbers ? d.child('minor').int(0, U32) : d.child('minor').int(0, U32, 0),
      fileMode: d.child('fileMode').optInt(0, 0o7777) ?? null,
      uid: d.child('uid').optInt(0, U32) ?? null, gid: d.child('gid').optInt(0, U32) ?? null,
    };
  });
  const prop = n.child('rootfsPropagation').str('') || null;
  if (prop !== null && !['shared', 'slave', 'private', 'unbindable', 'rshared', 'rslave', 'rprivate', 'runbindable'].includes(prop)) {
    n.child('rootfsPropagation').fail(`unknown propagation ${prop}`);
  }
  const p = n.child('personality').object(['domain', 'flags']);
  let personality: number | null = null;
  if (p.present) {
    const domain = p.child('domain').str();
    if (domain !== 'LINUX' && domain !== 'LINUX32') p.child('domain').fail(`unknown personality ${domain} (LINUX or LINUX32)`);
    if (p.child('flags').strings().length) p.child('flags').fail('not supported: personality flags');
    personality = domain === 'LINUX32' ? 8 : 0;
  }
  const cgroupsPath = n.child('cgroupsPath').str('') || null;
  return {
    namespaces, uidMappings: idMappings(n.child('uidMappings')), gidMappings: idMappings(n.child('gidMappings')), devices,
    cgroupsPath, resources: n.child('resources').value ?? undefined, rootfsPropagation: prop,
    maskedPaths: n.child('maskedPaths').strings(), readonlyPaths: n.child('readonlyPaths').strings(),
    sysctl: n.child('sysctl').stringMap(), seccomp: n.child('seccomp').value ?? undefined, personality,
  };
}

/** config.json of a bundle (absolute), as an OciConfig; rootfs resolved against the bundle. */
export function parseConfig(doc: JsonValue, bundle: string, source = 'config.json'): OciConfig {
  const top = new Node(source, '', doc);
  top.object(['ociVersion', 'root', 'process', 'hostname', 'domainname', 'mounts', 'hooks', 'annotations', 'linux'], {
    windows: NOT_HERE, solaris: NOT_HERE, vm: 'virtual-machine containers are not supported by tsns-oci', zos: NOT_HERE, freebsd: NOT_HERE,
  });
  if (!top.present) top.fail('expected an object');
  const version = top.child('ociVersion').str();
  if (!/^1\.\d+\.\d+/.test(version)) top.child('ociVersion').fail(`tsns-oci reads runtime-spec 1.x, not ${version}`);
  const root = top.child('root').object(['path', 'readonly']);
  if (!root.present) root.fail('missing');
  const rootPath = root.child('path').str();
  const lin = top.child('linux');
  if (!lin.present) lin.fail('missing: tsns-oci runs Linux containers');
  return {
    ociVersion: version,
    root: { path: resolve(bundle, rootPath), readonly: root.child('readonly').bool() },
    process: parseProcess(top.child('process')),
    hostname: top.child('hostname').optStr() ?? null,
    domainname: top.child('domainname').optStr() ?? null,
    mounts: top.child('mounts').array().map((m) => mount(m, bundle)),
    hooks: hooks(top.child('hooks')),
    annotations: top.child('annotations').stringMap(),
    linux: linux(lin),
  };
}
