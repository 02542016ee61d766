/*
 * The rules of end.h.  Linked into the static tsns-monitor as well as the
 * shim, so libc only, and nothing that assumes either.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "end.h"

void end_reclaim_tty(void)
{
	if (!isatty(STDIN_FILENO) || tcgetpgrp(STDIN_FILENO) == getpgrp())
		return;
	/* From a background group, tcsetpgrp would stop us with SIGTTOU unless
	 * it is blocked; blocked in this thread only, and for this call only. */
	sigset_t ttou, old;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &ttou, &old);
	tcsetpgrp(STDIN_FILENO, getpgrp());
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void end_die(int sig)
{
	struct rlimit nocore = { 0, 0 };
	struct sigaction dfl;
	sigset_t set;

	setrlimit(RLIMIT_CORE, &nocore);
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/* To this thread: the one whose mask was just cleared of `sig`. */
	syscall(SYS_tgkill, getpid(), gettid(), sig);
	_exit(128 + sig);
}

void end_as(int code, int sig)
{
	end_reclaim_tty();
	if (sig > 0)
		end_die(sig);
	_exit(code);
}
