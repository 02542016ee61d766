/*
 * How a tsns process ends once its command has: with the command's exit
 * code, or of the command's signal, so that the caller's shell sees the
 * same end.  One set of rules for tsns-monitor (monitor.c) and for the Node
 * process (the shim's tsns_end, tsns_die, tsns_reclaim_tty).
 */
#ifndef TSNS_END_H
#define TSNS_END_H

/* Give the terminal's foreground back to our process group when the command
 * (an interactive shell in a new pid namespace, say) left it elsewhere. */
void end_reclaim_tty(void);

/* Die of `sig`, without a core file (it would only be of tsns); exit
 * 128 + sig where the signal does not kill. */
__attribute__((noreturn)) void end_die(int sig);

/* The terminal back, then die of `sig` if it is > 0, else exit with `code`. */
__attribute__((noreturn)) void end_as(int code, int sig);
#endif
