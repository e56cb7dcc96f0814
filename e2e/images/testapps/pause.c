/* The sandbox's pause process: PID 1 of the pod's sandbox, holding its namespaces.
 * Sleeps until SIGINT/SIGTERM (then exits 0) and reaps any child it inherits. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
    (void)sig;
    _exit(0);
}

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

static int handle(int sig, void (*handler)(int)) {
    struct sigaction action = {.sa_handler = handler, .sa_flags = SA_RESTART};
    sigemptyset(&action.sa_mask);
    return sigaction(sig, &action, NULL);
}

int main(void) {
    if (handle(SIGINT, stop) || handle(SIGTERM, stop) || handle(SIGCHLD, reap)) {
        return 1;
    }
    for (;;) {
        pause();
    }
    return 0;
}
