/**
 * SCMP_ACT_NOTIFY: where the listener goes. The child loads the filter with
 * a listener (SECCOMP_FILTER_FLAG_NEW_LISTENER) and hands it to tsns over
 * its sync socket; tsns connects to the profile's listenerPath and sends,
 * as runc does, one message: the ContainerProcessState JSON with the
 * listener attached (SCM_RIGHTS). native/notify.c does the sending; this
 * builds what it sends, with the command's pid left for it to fill in.
 */
import { profileError } from './profile';
import { LISTENER_SEP, PID_MARK } from '../wire';

/** The agent to send the listener to, and the state that goes with it. */
export interface SeccompListener {
  /** listenerPath: a unix stream socket */
  path: string;
  /** the ContainerProcessState JSON; PID_MARK stands where the command's pid goes */
  state: string;
}

/** What the OCI runtime knows of the container (runc's state); tsns run has none of its own. */
export interface ListenerState {
  ociVersion?: string;
  /** default: tsns-PID */
  id?: string;
  bundle?: string;
  annotations?: Readonly<Record<string, string>>;
}

/** sockaddr_un's sun_path, with its NUL. */
const SUN_PATH = 108;

export function seccompListener(path: string, metadata: string | null, state: ListenerState, source: string): SeccompListener {
  if (path === '' || path.includes('\0') || path.includes(LISTENER_SEP)) throw profileError(source, 'listenerPath', `${JSON.stringify(path)} is not a socket path`);
  if (Buffer.byteLength(path) >= SUN_PATH) {
    throw profileError(source, 'listenerPath', `${path} is longer than a unix socket path may be (${SUN_PATH - 1} bytes)`, 'use a shorter path, e.g. a symbolic link to its directory');
  }
  const j = JSON.stringify;
  const version = j(state.ociVersion ?? '1.0.2');
  // JSON.stringify escapes every control character, so PID_MARK appears only where put.
  const id = state.id === undefined ? `"tsns-${PID_MARK}"` : j(state.id);
  const text = `{"ociVersion":${version},"fds":["seccompFd"],"pid":${PID_MARK},"metadata":${j(metadata ?? '')},` +
    `"state":{"ociVersion":${version},"id":${id},"status":"creating","pid":${PID_MARK},"bundle":${j(state.bundle ?? '')},` +
    `"annotations":${j(state.annotations ?? {})}}}`;
  return { path, state: text };
}
