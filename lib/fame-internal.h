/* SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef FAME_INTERNAL_H
#define FAME_INTERNAL_H

#include <stdint.h>
#include <syslog.h>

#include "fame.h"
#include "macro.h"

/* log.c */
void fame_logf(int priority, const char *fmt, ...) _printf_(2, 3);
/* Logs at LOG_ERR and returns r (a negative errno), so callers write return log_err(r, ...). */
int fame_log_errno(int r, const char *fmt, ...) _printf_(2, 3);
#define log_debug(...) fame_logf(LOG_DEBUG, __VA_ARGS__)
#define log_warning(...) fame_logf(LOG_WARNING, __VA_ARGS__)
#define log_err(r, ...) fame_log_errno((r), __VA_ARGS__)
/* Writes a message even if no callback is installed (stderr), async-signal-safe. */
void fame_log_fatal(const char *message);

/* format.c: on-FAM header, version 1 (docs/fam-format.md) */
#define FAME_MAGIC "FAME-FAM"
#define FAME_HEADER_SIZE 256u
#define FAME_HEADER_PAGE 4096u
#define FAME_META_MIN (UINT64_C(2) << 20)
#define FAME_DOORBELL_SIZE (UINT64_C(64) << 10)
#define FAME_LIBRARIAN_SIZE (UINT64_C(64) << 10)

uint32_t fame_crc32c(const void *buf, size_t len);
void fame_header_encode(const struct fame_geometry *geo, uint8_t out[FAME_HEADER_SIZE]);

/* open.c */
int fame_read_node_identity(uint32_t *ret_node, char **ret_cluster);
/* FAME_<ENV>, then fw_cfg opt/org.fame/<name>, then fame.<name>= on the kernel command line. */
char *fame_read_identity_value(const char *env, const char *name);
/* "a FIFO", "a directory", ... for messages about a file that should be a regular one */
const char *fame_file_kind(mode_t mode);
int fame_file_check_fd(int fd, const char *path, struct fame_geometry *ret_geo);
/* The descriptor the mapping was made from (FAM file or BAR2 resource2). */
int fame_fd(const struct fame *f);

/* Little-endian accessors: the on-FAM format is little-endian on every architecture. */
static inline uint32_t get_le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}
static inline uint64_t get_le64(const uint8_t *p) {
        return (uint64_t) get_le32(p) | (uint64_t) get_le32(p + 4) << 32;
}
static inline void put_le32(uint8_t *p, uint32_t v) {
        p[0] = v; p[1] = v >> 8; p[2] = v >> 16; p[3] = v >> 24;
}
static inline void put_le64(uint8_t *p, uint64_t v) {
        put_le32(p, (uint32_t) v);
        put_le32(p + 4, (uint32_t) (v >> 32));
}

#endif
