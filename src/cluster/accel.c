/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accel.h"
#include "log.h"
#include "macro.h"
#include "spawn.h"

#define PROBE_TIMEOUT_MS 6000

static int read_boot_id(char buf[64]) {
        _cleanup_close_ int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, 63);
        if (n <= 0)
                return -EIO;
        buf[n] = 0;
        buf[strcspn(buf, "\n")] = 0;
        return 0;
}

int accel_probe_kvm(const char *qemu, const char *kernel, const char *cache_dir, bool *ret_works, char **ret_why) {
        char boot[64] = "", cache[4096], line[256];
        int r;

        *ret_works = false;
        if (ret_why)
                *ret_why = NULL;
        _cleanup_close_ int kfd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kfd < 0) {
                if (ret_why)
                        *ret_why = strdup(errno == ENOENT ? "/dev/kvm does not exist" : "/dev/kvm cannot be opened");
                return 0;
        }
        (void) read_boot_id(boot);
        snprintf(cache, sizeof cache, "%s/kvm-probe", cache_dir);
        /* The cache is valid for this host boot and this kernel. */
        {
                struct stat kst;
                if (stat(kernel, &kst) == 0)
                        snprintf(boot + strlen(boot), sizeof boot - strlen(boot), "-%llx", (unsigned long long) kst.st_mtime);
        }
        FILE *f = fopen(cache, "re");
        if (f) {
                bool hit = fgets(line, sizeof line, f) != NULL;
                fclose(f);
                char id[64], answer[16];
                if (hit && sscanf(line, "%63s %15s", id, answer) == 2 && boot[0] && strcmp(id, boot) == 0) {
                        *ret_works = strcmp(answer, "yes") == 0;
                        if (!*ret_works && ret_why)
                                *ret_why = strdup("a test guest did not run under KVM (cached for this boot)");
                        return 0;
                }
        }

        {
                _cleanup_cmd_ struct cmd *c = cmd_new(qemu);
                cmd_args(c, (const char *const[]) { "-machine", "pc", "-accel", "kvm", "-nodefaults", "-no-user-config",
                                                    "-display", "none", "-m", "128M", "-no-reboot", "-kernel", kernel,
                                                    "-append", "console=ttyS0 quiet panic=-1", NULL });
                cmd_map_fd(c, 0, -1);
                cmd_map_fd(c, 1, -1);
                cmd_map_fd(c, 2, -1);
                r = cmd_run_timeout(c, PROBE_TIMEOUT_MS, NULL);
                *ret_works = r == 0;
                if (!*ret_works && ret_why)
                        *ret_why = strdup(r == -ETIMEDOUT ? "a test guest did not get through its boot under KVM within 6 s (no nested virtualisation?)"
                                                          : "QEMU could not start a KVM guest");
                log_debug("KVM probe: QEMU returned %d", r);
                if (r < 0 && r != -ETIMEDOUT)
                        return log_error_errno(r, "Failed to run '%s' for the KVM probe: %m", qemu);
        }
        if (boot[0]) {
                mkdir(cache_dir, 0755);
                f = fopen(cache, "we");
                if (f) {
                        fprintf(f, "%s %s\n", boot, *ret_works ? "yes" : "no");
                        fclose(f);
                }
        }
        return 0;
}

int accel_resolve(enum fame_accel want, const char *qemu, const char *kernel, const char *cache_dir, enum fame_accel *ret) {
        _cleanup_free_ char *why = NULL;
        bool works;
        int r;

        if (want == FAME_ACCEL_TCG) {
                *ret = FAME_ACCEL_TCG;
                return 0;
        }
        r = accel_probe_kvm(qemu, kernel, cache_dir, &works, &why);
        if (r < 0)
                return r;
        if (works) {
                *ret = FAME_ACCEL_KVM;
                return 0;
        }
        if (want == FAME_ACCEL_KVM)
                return log_error_errno(-ENODEV, "accel = kvm, but KVM cannot run guests here: %s; use accel = auto or tcg", why ? why : "unknown");
        log_debug("KVM not usable (%s): using TCG", why ? why : "?");
        *ret = FAME_ACCEL_TCG;
        return 0;
}
