/** `tsns run`'s seccomp profile option: Docker's and the OCI JSON, compiled with libseccomp. */
import { UsageError } from './args';
import { valued, type RunOpt } from './run-state';

export const SECCOMP_OPTIONS: RunOpt[] = [
  valued('seccomp-profile', 'FILE|default',
    "load a seccomp profile (Docker's or OCI JSON) last before exec; 'default' is Docker's default profile, 'unconfined' none (implies --no-new-privs)",
    (s, v) => {
      if (v === '') throw new UsageError('--seccomp-profile needs a profile file, or default');
      s.options.seccompProfile = v;
    }),
];
