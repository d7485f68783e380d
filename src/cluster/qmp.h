/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JSON clients for QEMU's monitor (QMP) and guest agent (QGA) over UNIX sockets, with json-c.
 * One request at a time; asynchronous QMP events are skipped while waiting for a reply.
 * Every call takes a timeout; nothing blocks forever.
 *
 * Errors: -ETIMEDOUT, -ECONNRESET (the peer closed the connection), -ENOENT/-ECONNREFUSED (no
 * one listens yet) and other -errno from the socket are returned without logging, since callers
 * often retry them.  Protocol violations (-EPROTO: no greeting, unexpected reply; -EBADMSG:
 * invalid JSON or base64) are logged once here, because only this layer knows the detail.
 * -EREMOTEIO (QEMU/the agent answered with an error) hands its "desc" text to the caller.
 * Requests carry an "id"; replies whose "id" differs (late replies of a request that timed
 * out) are skipped.  FAME_DEBUG=1 logs the traffic.
 */
#ifndef FAME_QMP_H
#define FAME_QMP_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

struct qmp;

/* QMP: connects, reads the greeting, negotiates capabilities (qmp_capabilities). */
int qmp_connect(const char *socket_path, int timeout_ms, struct qmp **ret);
/* QGA: connects and synchronises with guest-sync-delimited (0xff sentinel + id echo), so stale
 * replies of an earlier client are discarded.  It first sends a 0xff byte to reset the agent's
 * parser (the agent answers it with an error, skipped like anything before the sentinel).  An
 * agent that is not up yet gives -ETIMEDOUT after timeout_ms: callers retry until their own
 * deadline.  timeout_ms < 0 is -EINVAL, everywhere. */
int qga_connect(const char *socket_path, int timeout_ms, struct qmp **ret);
/* A client over another transport (libvirt's virDomainQemuMonitorCommand and
 * virDomainQemuAgentCommand): call sends one request (JSON text) and returns the whole reply text
 * in *ret_reply, or -EREMOTEIO with the peer's error text in *ret_error, or another -errno
 * (-ETIMEDOUT, -ENOTCONN: the agent is not connected yet).  Events are not seen.  name is for
 * messages; free_data(data) runs at qmp_close (also when this fails). */
typedef int (*qmp_call_fn)(void *data, const char *request, int timeout_ms, char **ret_reply, char **ret_error);
int qmp_new_call(const char *name, bool qga, qmp_call_fn call, void *data, void (*free_data)(void *data), struct qmp **ret);
void qmp_close(struct qmp *q);         /* accepts NULL */
void qmp_closep(struct qmp **q);
#define _cleanup_qmp_ __attribute__((cleanup(qmp_closep)))

/*
 * Sends {"execute": command, "arguments": args} (args may be NULL; ownership is taken) and
 * waits for the reply.  Returns 0 with *ret_return = the "return" member (caller puts it; may be
 * NULL if not wanted), -EREMOTEIO when QEMU answered with "error" (its "desc" is in
 * *ret_error if given; caller frees), -ETIMEDOUT, or another -errno for I/O errors.
 */
int qmp_execute(struct qmp *q, const char *command, json_object *args, int timeout_ms,
                json_object **ret_return, char **ret_error);

/* Asynchronous QMP events seen while waiting for replies: the names of the last
 * QMP_EVENTS_KEPT, newest first (n = 0 is the newest); NULL when there are fewer. */
#define QMP_EVENTS_KEPT 8
const char *qmp_last_event(const struct qmp *q, unsigned n);
bool qmp_saw_event(const struct qmp *q, const char *name);
void qmp_forget_events(struct qmp *q);
/* Returns 0 as soon as an event called name has been seen (at once if qmp_saw_event()), or
 * -ETIMEDOUT, or -ECONNRESET if QEMU closed the connection first.  Replies are ignored. */
int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms);

/* Guest agent helpers. */
int qga_ping(struct qmp *q, int timeout_ms);

struct qga_exec_result {
        int exit_code;                  /* or -1 when killed by a signal */
        int signal;                     /* 0 unless killed */
        char *out, *err;                /* decoded stdout/stderr, NUL-terminated; caller frees */
        size_t out_len, err_len;
        bool out_truncated, err_truncated;
        char *error;                    /* the agent's error text when qga_exec fails with -EREMOTEIO */
};
/* guest-exec argv[0] with argv[1..], optional stdin bytes (input != NULL), capture output; polls
 * guest-exec-status until exited or timeout_ms (then -ETIMEDOUT).  *ret is always initialised:
 * call qga_exec_result_done() afterwards, also on failure.  When the program cannot be started
 * the agent answers with an error: -EREMOTEIO and ret->error; qga_error_reason() turns it into
 * "No such file or directory" for a one-line message. */
int qga_exec(struct qmp *q, const char *const *argv, const void *input, size_t input_len,
             int timeout_ms, struct qga_exec_result *ret);
void qga_exec_result_done(struct qga_exec_result *r);

/* The cause in an agent's error text, for one-line messages: "Guest agent command failed, error
 * was 'Failed to execute child process “x” (No such file or directory)'" → "No such file or
 * directory"; other texts lose only the "Guest agent command failed" wrapper.  NULL → NULL;
 * caller frees; NULL on ENOMEM. */
char *qga_error_reason(const char *desc);

/* Writes a whole file in the guest (guest-file-open "w", guest-file-write in base64 chunks of
 * QGA_WRITE_CHUNK bytes, guest-file-close), then sets its mode with chmod through guest-exec
 * when mode != 0.  A failed chmod is logged (with its stderr) and gives -EIO. */
#define QGA_WRITE_CHUNK (48 * 1024)
int qga_write_file(struct qmp *q, const char *guest_path, const void *data, size_t len,
                   unsigned mode, int timeout_ms);

/* base64 (RFC 4648, standard alphabet, with padding), used by the guest agent.  encode: NULL on
 * ENOMEM.  decode: strict (no whitespace, length a multiple of 4, padding only at the end, zero
 * pad bits), -EINVAL otherwise; the result is NUL-terminated for convenience (not counted). */
char *base64_encode(const void *data, size_t len);
int base64_decode(const char *text, void **ret_data, size_t *ret_len);

#endif
