/*
 * podinit: a tiny PID 1 for containers.
 *
 * It runs one command as the leader of its own process group, forwards the
 * signals it gets to that group, reaps every zombie, and when the command
 * exits it stops whatever is left (SIGTERM, a grace period, SIGKILL) before
 * exiting with the command's status. When it is not PID 1 it registers as a
 * child subreaper so that it can do the same for the orphans it adopts.
 *
 * Signals are never handled asynchronously: they stay blocked and are taken
 * one at a time from rt_sigtimedwait, so nothing here runs in signal context.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PODINIT_VERSION
#define PODINIT_VERSION "0.1.0"
#endif

#define EXIT_IO 1
#define EXIT_USAGE 2
#define NSEC_PER_SEC 1000000000LL
#define DEFAULT_GRACE (5 * NSEC_PER_SEC)
#define MAX_SECONDS 1000000LL
#define KILL_REPEAT (NSEC_PER_SEC / 10)

/* The kernel's signal set, 64 signals: libc's sigset_t hides 32-34 from us. */
typedef uint64_t sigmask_t;
#define NSIGS 64
#define BIT(sig) ((sigmask_t)1 << ((sig) - 1))

static struct {
	int verbose;
	int single_child;
	int rewrite[NSIGS + 1];     /* signal sent for each one received; 0 drops it */
	unsigned char remap[256];   /* final exit code for each child exit code */
	long long term_delay;       /* nanoseconds */
	long long grace;            /* nanoseconds */
} opt;

static pid_t self;              /* our pid: 1, or not */
static pid_t child;             /* the main child until it is reaped, then 0 */
static pid_t group;             /* its process group, which may outlive it */
static sigmask_t waited;        /* the signals we block and take */

static const struct { char name[7]; unsigned char num; } signames[] = {
	{"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"ILL", SIGILL},
	{"TRAP", SIGTRAP}, {"ABRT", SIGABRT}, {"IOT", SIGIOT}, {"BUS", SIGBUS},
	{"FPE", SIGFPE}, {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},
	{"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
	{"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
	{"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}, {"URG", SIGURG},
	{"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
	{"WINCH", SIGWINCH}, {"IO", SIGIO}, {"POLL", SIGPOLL}, {"PWR", SIGPWR},
	{"SYS", SIGSYS},
};

static const char usage[] =
	"usage: podinit [options] [--] CMD [ARG...]\n"
	"       podinit install DEST\n"
	"       podinit --version | --help\n"
	"\n"
	"Runs CMD as a child, forwards signals to its process group, reaps zombies,\n"
	"and stops leftover processes when CMD exits. Exits with CMD's status\n"
	"(128+N if it died of signal N).\n"
	"\n"
	"  -v, --verbose           log what happens to stderr   PODINIT_VERBOSE=1\n"
	"      --single-child      signal the child only, not its group\n"
	"                                                       PODINIT_SINGLE_CHILD=1\n"
	"      --rewrite FROM:TO   send TO when FROM arrives; TO=0 drops FROM\n"
	"                          (repeatable)                 PODINIT_REWRITE=TERM:QUIT,HUP:0\n"
	"      --remap-exit FROM:TO  exit TO when CMD exits FROM (repeatable)\n"
	"                                                       PODINIT_REMAP_EXIT=143:0\n"
	"      --term-delay SECS   hold SIGTERM this long before forwarding it\n"
	"                                                       PODINIT_TERM_DELAY=2.5\n"
	"      --grace SECS        after CMD exits, SIGTERM the rest and SIGKILL\n"
	"                          them after SECS (default 5)  PODINIT_GRACE=5\n"
	"\n"
	"  install DEST            copy this executable to DEST atomically (mode 0755)\n";

/* ---- logging: stderr only, one line per message, "podinit:" prefix ---- */

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nowhere left to report a broken stderr */
		buf += n;
		len -= (size_t)n;
	}
}

__attribute__((format(printf, 1, 0)))
static void vsay(const char *fmt, va_list ap)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "podinit: ");
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if (n > (int)sizeof buf - 2)
		n = (int)sizeof buf - 2;
	buf[n++] = '\n';
	write_all(STDERR_FILENO, buf, (size_t)n);
}

__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
}

#define info(...) do { if (opt.verbose) say(__VA_ARGS__); } while (0)

__attribute__((format(printf, 2, 3), noreturn))
static void die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	exit(code);
}

/* The one error style for failed syscalls that leave no way forward. */
#define die_errno(code, what) die(code, "%s: %s", what, strerror(errno))

/* ---- parsing option values ---- */

static const char *signame(int sig)
{
	for (size_t i = 0; i < sizeof signames / sizeof signames[0]; i++)
		if (signames[i].num == sig)
			return signames[i].name;
	return sig >= 32 ? "RT" : "?";
}

/* Decimal digits only, no sign, no spaces, at most max. */
static int parse_uint(const char *s, size_t len, long long max, long long *out)
{
	long long v = 0;
	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > max)
			return -1;
	}
	*out = v;
	return 0;
}

/* "TERM", "SIGTERM", "term" or "15"; 0 only when allow_zero. */
static int parse_signal(const char *s, size_t len, int allow_zero)
{
	long long n;
	if (parse_uint(s, len, NSIGS, &n) == 0)
		return n == 0 && !allow_zero ? -1 : (int)n;
	if (len > 3 && strncasecmp(s, "SIG", 3) == 0) {
		s += 3;
		len -= 3;
	}
	for (size_t i = 0; i < sizeof signames / sizeof signames[0]; i++)
		if (strlen(signames[i].name) == len && strncasecmp(signames[i].name, s, len) == 0)
			return signames[i].num;
	return -1;
}

/* Seconds with an optional fraction ("5", "2.5", "0.001"), as nanoseconds. */
static int parse_seconds(const char *s, long long *out)
{
	const char *dot = strchr(s, '.');
	size_t whole = dot ? (size_t)(dot - s) : strlen(s);
	long long secs, frac = 0, scale = NSEC_PER_SEC;
	if (parse_uint(s, whole, MAX_SECONDS, &secs) < 0)
		return -1;
	if (dot) {
		const char *d = dot + 1;
		if (*d == '\0')
			return -1;
		for (; *d; d++) {
			if (*d < '0' || *d > '9' || scale == 1)
				return -1;
			scale /= 10;
			frac += (*d - '0') * scale;
		}
	}
	*out = secs * NSEC_PER_SEC + frac;
	return 0;
}

/* Signals podinit takes and passes on: all but the uncatchable, SIGCHLD
 * (podinit's own business) and the synchronous faults, which only make sense
 * for the process that caused them. */
static int forwardable(int sig)
{
	switch (sig) {
	case SIGKILL: case SIGSTOP: case SIGCHLD:
	case SIGILL: case SIGTRAP: case SIGBUS: case SIGFPE: case SIGSEGV: case SIGSYS:
		return 0;
	}
	return sig >= 1 && sig <= NSIGS;
}

/* Splits "FROM:TO" items of a comma-separated list and hands each pair on. */
static void parse_pairs(const char *src, const char *list,
			void (*apply)(const char *src, const char *item, size_t len,
				      const char *from, size_t flen, const char *to, size_t tlen))
{
	const char *item = list;
	for (;;) {
		size_t len = strcspn(item, ",");
		const char *colon = memchr(item, ':', len);
		if (!colon || memchr(colon + 1, ':', len - (size_t)(colon + 1 - item)))
			die(EXIT_USAGE, "%s: '%.*s' is not FROM:TO", src, (int)len, item);
		apply(src, item, len, item, (size_t)(colon - item),
		      colon + 1, len - (size_t)(colon + 1 - item));
		if (item[len] == '\0')
			return;
		item += len + 1;
	}
}

static void apply_rewrite(const char *src, const char *item, size_t len,
			  const char *from, size_t flen, const char *to, size_t tlen)
{
	int f = parse_signal(from, flen, 0);
	int t = parse_signal(to, tlen, 1);
	if (f < 0 || t < 0)
		die(EXIT_USAGE, "%s: unknown signal in '%.*s'", src, (int)len, item);
	if (!forwardable(f))
		die(EXIT_USAGE, "%s: '%.*s': signal %d is never forwarded", src, (int)len, item, f);
	opt.rewrite[f] = t;
}

static void apply_remap(const char *src, const char *item, size_t len,
			const char *from, size_t flen, const char *to, size_t tlen)
{
	long long f, t;
	if (parse_uint(from, flen, 255, &f) < 0 || parse_uint(to, tlen, 255, &t) < 0)
		die(EXIT_USAGE, "%s: '%.*s' needs exit codes 0-255", src, (int)len, item);
	opt.remap[f] = (unsigned char)t;
}

static void set_seconds(const char *src, const char *val, long long *out)
{
	if (parse_seconds(val, out) < 0)
		die(EXIT_USAGE, "%s: '%s' is not a number of seconds", src, val);
}

static void set_flag(const char *src, const char *val, int *out)
{
	if (strcmp(val, "1") != 0 && strcmp(val, "0") != 0 && val[0] != '\0')
		die(EXIT_USAGE, "%s: '%s' is not 0 or 1", src, val);
	*out = val[0] == '1';
}

/* Takes a variable out of the environment: the app must not inherit our
 * options, or a podinit it runs would apply them a second time. */
static const char *take_env(const char *name)
{
	const char *v = getenv(name);
	if (v && unsetenv(name) < 0)
		die_errno(1, "unsetenv");
	return v;
}

static void read_env(void)
{
	const char *v;
	if ((v = take_env("PODINIT_VERBOSE")))
		set_flag("PODINIT_VERBOSE", v, &opt.verbose);
	if ((v = take_env("PODINIT_SINGLE_CHILD")))
		set_flag("PODINIT_SINGLE_CHILD", v, &opt.single_child);
	if ((v = take_env("PODINIT_REWRITE")) && *v)
		parse_pairs("PODINIT_REWRITE", v, apply_rewrite);
	if ((v = take_env("PODINIT_REMAP_EXIT")) && *v)
		parse_pairs("PODINIT_REMAP_EXIT", v, apply_remap);
	if ((v = take_env("PODINIT_TERM_DELAY")))
		set_seconds("PODINIT_TERM_DELAY", v, &opt.term_delay);
	if ((v = take_env("PODINIT_GRACE")))
		set_seconds("PODINIT_GRACE", v, &opt.grace);
}

/* "--name VALUE" or "--name=VALUE"; advances *i past the value. */
static const char *option_value(int argc, char **argv, int *i, const char *name)
{
	size_t n = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, n) != 0)
		return NULL;
	if (a[n] == '=')
		return a + n + 1;
	if (a[n] != '\0')
		return NULL;
	if (++*i >= argc)
		die(EXIT_USAGE, "option '%s' needs a value", name);
	return argv[*i];
}

/* Returns the index of CMD in argv. */
static int parse_args(int argc, char **argv)
{
	int i;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			opt.verbose = 1;
		} else if (strcmp(a, "--single-child") == 0) {
			opt.single_child = 1;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			write_all(STDOUT_FILENO, usage, sizeof usage - 1);
			exit(0);
		} else if (strcmp(a, "--version") == 0) {
			write_all(STDOUT_FILENO, "podinit " PODINIT_VERSION "\n",
				  sizeof "podinit " PODINIT_VERSION "\n" - 1);
			exit(0);
		} else if ((v = option_value(argc, argv, &i, "--rewrite"))) {
			parse_pairs("--rewrite", v, apply_rewrite);
		} else if ((v = option_value(argc, argv, &i, "--remap-exit"))) {
			parse_pairs("--remap-exit", v, apply_remap);
		} else if ((v = option_value(argc, argv, &i, "--term-delay"))) {
			set_seconds("--term-delay", v, &opt.term_delay);
		} else if ((v = option_value(argc, argv, &i, "--grace"))) {
			set_seconds("--grace", v, &opt.grace);
		} else {
			die(EXIT_USAGE, "unknown option '%s' (see --help)", a);
		}
	}
	if (i >= argc)
		die(EXIT_USAGE, "missing command (see --help)");
	return i;
}

/* ---- install: copy our own executable into a volume, atomically ---- */

static int install(const char *self, const char *dest)
{
	char tmp[PATH_MAX], dir[PATH_MAX], buf[16384];
	const char *slash = strrchr(dest, '/');
	int in, out, dfd;
	ssize_t n;

	/* The init image has nothing but this file, so /proc may be all we have. */
	in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (in < 0)
		in = open(self, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		die_errno(EXIT_IO, "install: cannot open own executable");
	if (slash)
		snprintf(dir, sizeof dir, "%.*s", slash == dest ? 1 : (int)(slash - dest), dest);
	else
		strcpy(dir, ".");
	if (snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, slash ? slash + 1 : dest)
	    >= (int)sizeof tmp)
		die(EXIT_IO, "install: %s: name too long", dest);

	/* A random name, created O_EXCL: our pid is always 1 in the copy
	 * container, so a copy killed before its rename would otherwise leave
	 * a name that makes every retry fail. */
	out = mkostemp(tmp, O_CLOEXEC);
	if (out < 0)
		die(EXIT_IO, "install: cannot create a file in %s: %s", dir, strerror(errno));
	for (;;) {
		n = read(in, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (char *p = buf; n > 0;) {
			ssize_t w = write(out, p, (size_t)n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				goto fail;
			p += w;
			n -= w;
		}
	}
	if (n < 0 || fchmod(out, 0755) < 0 || fsync(out) < 0)
		goto fail;
	if (close(out) < 0) {
		out = -1;
		goto fail;
	}
	out = -1;
	if (rename(tmp, dest) < 0)
		goto fail;
	/* Make the rename itself durable. A filesystem that can't is no error,
	 * nor a directory we may write but not read (and so cannot open): the
	 * rename is done either way. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 && errno != EACCES)
		die(EXIT_IO, "install: %s: %s", dir, strerror(errno));
	if (dfd >= 0) {
		if (fsync(dfd) < 0 && errno != EINVAL)
			die(EXIT_IO, "install: %s: %s", dir, strerror(errno));
		close(dfd);
	}
	close(in);
	info("installed %s", dest);
	return 0;
fail:
	{
		int e = errno ? errno : EIO;
		if (out >= 0)
			close(out);
		unlink(tmp);
		die(EXIT_IO, "install: %s: %s", dest, strerror(e));
	}
}

/* ---- signals and processes ---- */

static void set_sigmask(sigmask_t mask)
{
	if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &mask, NULL, sizeof mask) < 0)
		die_errno(1, "rt_sigprocmask");
}

/* An ignored signal is discarded and stays ignored across exec, and an
 * ignored SIGCHLD would even make the kernel reap for us: undo what our
 * parent set. Raw rt_sigaction, as libc refuses the signals it reserves.
 * Handlers (a sanitizer's) are left alone; exec resets those anyway. */
static void reset_ignored(void)
{
	/* The kernel's layout on x86-64 and arm64; all zero means SIG_DFL. */
	struct { void (*handler)(int); unsigned long flags; void *restorer; sigmask_t mask; }
		dfl = {0}, old;
	for (int sig = 1; sig <= NSIGS; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (syscall(SYS_rt_sigaction, sig, NULL, &old, sizeof(sigmask_t)) < 0)
			die_errno(1, "rt_sigaction");
		if (old.handler == SIG_IGN &&
		    syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof(sigmask_t)) < 0)
			die_errno(1, "rt_sigaction");
	}
}

static long long now(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		die_errno(1, "clock_gettime");
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* Next waited-for signal; 0 when the deadline (if >= 0) passes first.
 * Signals our own syscalls raised are dropped: the kernel sends SIGPIPE
 * (SIGXFSZ) to a writer whose stderr is closed (over its limit), and
 * forwarding that would kill the app for our log line. Not logged, as that
 * would raise another. */
static int wait_signal(long long deadline)
{
	struct timespec ts, *tsp = NULL;
	siginfo_t si;
	long sig;
	do {
		if (deadline >= 0) {
			long long left = deadline - now();
			if (left < 0)
				left = 0;
			ts.tv_sec = left / NSEC_PER_SEC;
			ts.tv_nsec = left % NSEC_PER_SEC;
			tsp = &ts;
		}
		sig = syscall(SYS_rt_sigtimedwait, &waited, &si, tsp, sizeof waited);
	} while (sig > 0 && si.si_code == SI_USER && si.si_pid == self);
	if (sig > 0)
		return (int)sig;
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	die_errno(1, "rt_sigtimedwait");
}

static void signal_one(pid_t pid, int sig)
{
	if (kill(pid, sig) < 0 && errno != ESRCH)
		say("kill %d: %s", (int)pid, strerror(errno));
}

static pid_t parent_of(pid_t pid)
{
	char path[40], buf[128];
	const char *p;
	ssize_t n;
	int fd;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1; /* gone */
	do
		n = read(fd, buf, sizeof buf - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "pid (comm) S ppid ...": comm may hold anything, so take the last ')' */
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] && p[3] == ' ' ? (pid_t)atoi(p + 4) : -1;
}

/* Not PID 1, so kill(-1) would hit the whole machine: walk /proc for the
 * processes below us instead. */
static void signal_descendants(int sig)
{
	struct dirent *e;
	DIR *d = opendir("/proc");
	if (!d) {
		say("/proc: %s; signalling the child's group only", strerror(errno));
		signal_one(-group, sig);
		return;
	}
	for (errno = 0; (e = readdir(d)); errno = 0) {
		pid_t pid = (pid_t)atoi(e->d_name), p = pid;
		for (int depth = 0; p > 1 && depth < 4096; depth++) {
			p = parent_of(p);
			if (p == self) {
				signal_one(pid, sig);
				break;
			}
		}
	}
	if (errno)
		say("/proc: %s", strerror(errno));
	closedir(d);
}

/* Everything still running besides us. */
static void signal_rest(int sig)
{
	info("SIG%s (%d) -> all remaining processes", signame(sig), sig);
	if (self != 1)
		signal_descendants(sig);
	else if (kill(-1, sig) < 0 && errno != ESRCH)
		say("kill -1: %s", strerror(errno));
}

/* To the app while it runs: its group, or with --single-child the child
 * alone; once it has exited, to everything that is left. */
static void deliver(int sig)
{
	if (!child)
		signal_rest(sig);
	else if (opt.single_child)
		signal_one(child, sig);
	else if (kill(-group, sig) < 0)
		signal_one(child, sig); /* it may have left its group */
}

static void forward(int sig)
{
	int to = opt.rewrite[sig];
	if (to == 0) {
		info("dropping SIG%s (%d)", signame(sig), sig);
		return;
	}
	if (child)
		info("SIG%s (%d) -> %s %d as %d", signame(sig), sig,
		     opt.single_child ? "child" : "group", (int)child, to);
	deliver(to);
	/* A stopped process acts on a request to end only once continued;
	 * systemd and bash's kill send SIGCONT after it too. */
	if (sig == SIGTERM || sig == SIGHUP)
		deliver(SIGCONT);
}

/* Hands the terminal's foreground from group `from` to group `to`, only if
 * `from` has it: a shell running us in the background keeps its terminal.
 * Our signals are blocked, so SIGTTOU doesn't stop us for trying. */
static void pass_terminal(pid_t from, pid_t to)
{
	if (tcgetpgrp(STDIN_FILENO) == from && tcsetpgrp(STDIN_FILENO, to) < 0)
		info("tcsetpgrp: %s", strerror(errno));
}

/* Whether a SIGCONT waits for us: we have been continued. */
static int continued(void)
{
	sigmask_t set;
	if (syscall(SYS_rt_sigpending, &set, sizeof set) < 0)
		die_errno(1, "rt_sigpending");
	return (set & BIT(SIGCONT)) != 0;
}

/* The main child was stopped: by Ctrl-Z, or by reading or writing its
 * terminal from the background. A SIGSTOP is left to whoever sent it. */
static void child_stopped(int sig)
{
	info("child stopped by SIG%s (%d)", signame(sig), sig);
	if (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)
		return;
	if (self != 1) {
		/* Stop as well, with the terminal back in our group, so that the
		 * shell that runs us sees its job stopped. Its fg or bg continues
		 * us; the SIGCONT is then forwarded, and with fg the child
		 * retakes the terminal. */
		pass_terminal(group, getpgrp());
		if (kill(self, sig) < 0)
			die_errno(1, "kill");
		set_sigmask(waited & ~BIT(sig)); /* we stop here, until SIGCONT */
		set_sigmask(waited);
		if (continued()) {
			pass_terminal(getpgrp(), group);
			return;
		}
		/* The kernel discarded the stop: no shell controls our group. */
	}
	/* As PID 1, or with no shell above us, nobody could ever continue it. */
	info("continuing it");
	pass_terminal(getpgrp(), group);
	deliver(SIGCONT);
}

/* Collects every zombie there is; 0 once we have no children at all. The
 * main child's exit goes to *status, a stop of it to *stopped. */
static int reap(int *status, int *stopped)
{
	for (;;) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG | WUNTRACED);
		if (pid > 0 && WIFSTOPPED(st)) {
			if (pid == child)
				*stopped = WSTOPSIG(st);
		} else if (pid > 0) {
			/* Forgotten once reaped: an orphan may get its pid next. */
			if (pid == child) {
				*status = st;
				child = 0;
			}
			info("reaped %d", (int)pid);
		} else if (pid == 0) {
			return 1;
		} else if (errno == ECHILD) {
			return 0;
		} else if (errno != EINTR) {
			die_errno(1, "waitpid");
		}
	}
}

static pid_t spawn(char **cmd)
{
	pid_t ours = getpgrp();
	pid_t pid = fork();
	if (pid < 0)
		die_errno(1, "fork");
	if (pid == 0) {
		if (setpgid(0, 0) < 0)
			die_errno(1, "setpgid");
		pass_terminal(ours, getpid());
		set_sigmask(0);
		execvp(cmd[0], cmd);
		int e = errno;
		/* Blocked again, so that a closed stderr can't turn 127 into 141. */
		set_sigmask(BIT(SIGPIPE));
		/* _exit: the forked copy must not run the parent's exit handlers */
		if (e == ENOENT) {
			say("%s: command not found", cmd[0]);
			_exit(127);
		}
		say("%s: %s", cmd[0], strerror(e));
		_exit(126);
	}
	/* Also from here, so the group exists before we first signal it; the
	 * child may have exec'd (EACCES) or died (ESRCH) already. */
	if (setpgid(pid, pid) < 0 && errno != EACCES && errno != ESRCH)
		die_errno(1, "setpgid");
	info("started %s as %d", cmd[0], (int)pid);
	return pid;
}

static long long earliest(long long a, long long b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* Runs until the child has exited and nothing else is left; returns the
 * child's wait status. */
static int supervise(void)
{
	int status = -1, stopped = 0;
	long long term_at = -1;  /* a held SIGTERM is due */
	long long kill_at = -1;  /* the drain escalates to SIGKILL */

	for (;;) {
		int left = reap(&status, &stopped);
		if (stopped) {
			child_stopped(stopped);
			stopped = 0;
		}
		if (status != -1 && kill_at < 0) {
			info("child exited; %lld ms grace for the rest", opt.grace / 1000000);
			term_at = -1;
			kill_at = now() + opt.grace;
			if (left) {
				signal_rest(SIGTERM);
				signal_rest(SIGCONT); /* for the stopped ones */
			}
		}
		if (status != -1 && !left)
			return status;

		int sig = wait_signal(earliest(term_at, kill_at));
		long long t = now();
		if (sig == SIGCHLD)
			continue;
		if (sig == 0) {
			if (term_at >= 0 && t >= term_at) {
				term_at = -1;
				forward(SIGTERM);
			}
			if (kill_at >= 0 && t >= kill_at) {
				signal_rest(SIGKILL);
				/* again, for anything forked in between */
				kill_at = t + KILL_REPEAT;
			}
		} else if (sig == SIGTERM && opt.term_delay > 0 && child) {
			if (term_at < 0)
				term_at = t + opt.term_delay;
			info("holding SIGTERM for %lld ms", opt.term_delay / 1000000);
		} else {
			forward(sig);
		}
	}
}

int main(int argc, char **argv)
{
	int cmd, status, code;

	if (argc > 1 && strcmp(argv[1], "install") == 0) {
		if (argc != 3)
			die(EXIT_USAGE, "usage: podinit install DEST");
		return install(argv[0], argv[2]);
	}

	self = getpid();
	waited = BIT(SIGCHLD);
	for (int sig = 1; sig <= NSIGS; sig++)
		if (forwardable(sig))
			waited |= BIT(sig);
	/* Block first, then undo what our parent left ignored: the other way
	 * round, a signal arriving in between would kill us. From here on
	 * nothing sent to us is lost, and our writes to a closed stderr get
	 * EPIPE rather than SIGPIPE. */
	set_sigmask(waited);
	reset_ignored();

	for (int sig = 1; sig <= NSIGS; sig++)
		opt.rewrite[sig] = sig;
	for (int c = 0; c < 256; c++)
		opt.remap[c] = (unsigned char)c;
	opt.grace = DEFAULT_GRACE;
	/* Twice: first so that --help and the command line's errors come
	 * before the environment's, then over the environment, which it
	 * overrides. */
	parse_args(argc, argv);
	read_env();
	cmd = parse_args(argc, argv);

	/* Only an emulator (qemu-user) lacks it; orphans then go to its init. */
	if (self != 1 && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		info("cannot become a subreaper: %s", strerror(errno));

	child = group = spawn(argv + cmd);
	status = supervise();
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	info("child status %d, exiting %d", code, opt.remap[code & 255]);
	return opt.remap[code & 255];
}
