/* Make the system calls named on the command line; print "name=OK" or "name=ERRNO".
 *
 * busybox cannot make most of these calls (clone3, x32 or i386 numbers, a vsock
 * socket ...), so the security tests copy this static binary into a container
 * and look at what each call gives back. Calls that succeed undo what they did.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A child that exits at once: the parent reaps it. */
static long reap(long pid) {
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return pid < 0 ? -1 : 0;
}

/* unshare(2) in a child, so that this process stays in the container's namespaces. */
static long unshare_in_child(int flags) {
    pid_t pid = fork();
    if (pid == 0) _exit(unshare(flags) ? errno : 0);
    int status = 0;
    waitpid(pid, &status, 0);
    errno = WEXITSTATUS(status);
    return errno ? -1 : 0;
}

static long call(const char *name) {
    if (!strcmp(name, "getpid")) return getpid() > 0 ? 0 : -1;
    if (!strcmp(name, "euid")) return printf("euid=%d\n", (int)geteuid()) < 0 ? -1 : 0;
    if (!strcmp(name, "fork")) return reap(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
    if (!strcmp(name, "clone_newuser")) return reap(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    if (!strcmp(name, "clone_newns")) return reap(syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0));
    if (!strcmp(name, "clone3")) {
        uint64_t args[11] = {0};
        args[4] = SIGCHLD;                        /* exit_signal */
        return reap(syscall(435, args, sizeof args));
    }
    if (!strcmp(name, "unshare_user")) return unshare_in_child(CLONE_NEWUSER);
    if (!strcmp(name, "unshare_ns")) return unshare_in_child(CLONE_NEWNS);
    if (!strcmp(name, "mount")) {
        if (mount("none", "/tmp", "tmpfs", 0, NULL)) return -1;
        return umount("/tmp");
    }
    if (!strcmp(name, "sethostname")) {
        char host[256] = {0};
        gethostname(host, sizeof host - 1);
        return sethostname(host, strlen(host));    /* the same name again */
    }
    if (!strcmp(name, "chroot")) return chroot("/");
    if (!strcmp(name, "personality_query")) return personality(0xffffffff) == -1 ? -1 : 0;
    if (!strcmp(name, "personality_bsd")) {
        if (personality(PER_BSD) == -1) return -1;
        return personality(PER_LINUX) == -1 ? -1 : 0;
    }
    if (!strcmp(name, "io_uring_setup")) {
        char params[120] = {0};                   /* struct io_uring_params */
        long fd = syscall(425, 1, params);
        return fd < 0 ? -1 : close((int)fd);
    }
    if (!strcmp(name, "vsock")) {
        int fd = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0);
        return fd < 0 ? -1 : close(fd);
    }
    if (!strcmp(name, "keyctl")) return syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0) < 0 ? -1 : 0;
    if (!strcmp(name, "clock_settime")) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return clock_settime(CLOCK_MONOTONIC, &now);   /* EINVAL in the kernel: never changes time */
    }
    if (!strcmp(name, "bpf")) return syscall(SYS_bpf, -1, NULL, 0);
    if (!strcmp(name, "perf_event_open")) return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
    if (!strcmp(name, "syslog")) return syscall(SYS_syslog, 3 /* READ_ALL */, NULL, 0);
    if (!strcmp(name, "kexec_load")) return syscall(SYS_kexec_load, 0, 0, NULL, 0);
    if (!strcmp(name, "init_module")) return syscall(SYS_init_module, NULL, 0, "");
    if (!strcmp(name, "open_by_handle_at")) return syscall(SYS_open_by_handle_at, -1, NULL, 0);
    if (!strcmp(name, "setns")) return syscall(SYS_setns, -1, 0);
#ifdef __x86_64__
    if (!strcmp(name, "x32_getpid")) return syscall(39 | 0x40000000);
    if (!strcmp(name, "i386_getpid")) {
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20) : "memory");  /* getpid in i386's table */
        if (ret < 0) { errno = (int)-ret; return -1; }
        return 0;
    }
#endif
    errno = EINVAL;
    fprintf(stderr, "unknown call %s\n", name);
    return -2;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long result = call(argv[i]);
        if (result == -2) return 2;
        printf("%s=%s\n", argv[i], result < 0 ? strerrorname_np(errno) : "OK");
        fflush(stdout);
    }
    return 0;
}
