/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Source compatibility of fam_atomic.h with libfam-atomic 2.x: every function has exactly
 * the documented prototype (checked at compile time), the types have the documented layout,
 * the ioctl numbers are the documented ones, and the deprecated 1.x names still work.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "fam_atomic.h"
#include "fame.h"
#include "testlib.h"

#define SAME_TYPE(fn, type) _Static_assert(__builtin_types_compatible_p(__typeof__(&fn), type), #fn " has the wrong prototype")

SAME_TYPE(fam_atomic_register_region, int (*)(void *, size_t, int, off_t));
SAME_TYPE(fam_atomic_unregister_region, void (*)(void *, size_t));
SAME_TYPE(fam_atomic_32_fetch_add, int32_t (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_fetch_add, int64_t (*)(int64_t *, int64_t));
SAME_TYPE(fam_atomic_32_swap, int32_t (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_swap, int64_t (*)(int64_t *, int64_t));
SAME_TYPE(fam_atomic_128_swap, void (*)(int64_t *, int64_t *, int64_t *));
SAME_TYPE(fam_atomic_32_compare_store, int32_t (*)(int32_t *, int32_t, int32_t));
SAME_TYPE(fam_atomic_64_compare_store, int64_t (*)(int64_t *, int64_t, int64_t));
SAME_TYPE(fam_atomic_128_compare_store, void (*)(int64_t *, int64_t *, int64_t *, int64_t *));
SAME_TYPE(fam_atomic_32_read, int32_t (*)(int32_t *));
SAME_TYPE(fam_atomic_64_read, int64_t (*)(int64_t *));
SAME_TYPE(fam_atomic_128_read, void (*)(int64_t *, int64_t *));
SAME_TYPE(fam_atomic_32_write, void (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_write, void (*)(int64_t *, int64_t));
SAME_TYPE(fam_atomic_128_write, void (*)(int64_t *, int64_t *));
SAME_TYPE(fam_atomic_32_fetch_and, int32_t (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_fetch_and, int64_t (*)(int64_t *, int64_t));
SAME_TYPE(fam_atomic_32_fetch_or, int32_t (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_fetch_or, int64_t (*)(int64_t *, int64_t));
SAME_TYPE(fam_atomic_32_fetch_xor, int32_t (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_fetch_xor, int64_t (*)(int64_t *, int64_t));
SAME_TYPE(fam_spin_lock_init, void (*)(struct fam_spinlock *));
SAME_TYPE(fam_spin_lock, void (*)(struct fam_spinlock *));
SAME_TYPE(fam_spin_trylock, bool (*)(struct fam_spinlock *));
SAME_TYPE(fam_spin_unlock, void (*)(struct fam_spinlock *));

/* Deprecated 1.x names: static inline wrappers with the same prototypes. */
SAME_TYPE(fam_atomic_32_fetch_and_add_unpadded, int32_t (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_fetch_and_add_unpadded, int64_t (*)(int64_t *, int64_t));
SAME_TYPE(fam_atomic_32_swap_unpadded, int32_t (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_swap_unpadded, int64_t (*)(int64_t *, int64_t));
SAME_TYPE(fam_atomic_128_swap_unpadded, void (*)(int64_t *, int64_t *, int64_t *));
SAME_TYPE(fam_atomic_32_compare_and_store_unpadded, int32_t (*)(int32_t *, int32_t, int32_t));
SAME_TYPE(fam_atomic_64_compare_and_store_unpadded, int64_t (*)(int64_t *, int64_t, int64_t));
SAME_TYPE(fam_atomic_128_compare_and_store_unpadded, void (*)(int64_t *, int64_t *, int64_t *, int64_t *));
SAME_TYPE(fam_atomic_32_read_unpadded, int32_t (*)(int32_t *));
SAME_TYPE(fam_atomic_64_read_unpadded, int64_t (*)(int64_t *));
SAME_TYPE(fam_atomic_128_read_unpadded, void (*)(int64_t *, int64_t *));
SAME_TYPE(fam_atomic_32_write_unpadded, void (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_write_unpadded, void (*)(int64_t *, int64_t));
SAME_TYPE(fam_atomic_128_write_unpadded, void (*)(int64_t *, int64_t *));
SAME_TYPE(fam_atomic_32_fetch_and_unpadded, int32_t (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_fetch_and_unpadded, int64_t (*)(int64_t *, int64_t));
SAME_TYPE(fam_atomic_32_fetch_or_unpadded, int32_t (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_fetch_or_unpadded, int64_t (*)(int64_t *, int64_t));
SAME_TYPE(fam_atomic_32_fetch_xor_unpadded, int32_t (*)(int32_t *, int32_t));
SAME_TYPE(fam_atomic_64_fetch_xor_unpadded, int64_t (*)(int64_t *, int64_t));

/* Types and layouts. */
_Static_assert(sizeof(__fam_ticket_t) == 4, "ticket is int32_t");
_Static_assert(sizeof(__fam_ticketpair_t) == 8, "ticket pair is int64_t");
_Static_assert(sizeof(struct fam_spinlock) == 8, "spinlock is one 64-bit word");
_Static_assert(offsetof(struct fam_spinlock, tickets.head) == 0, "head at offset 0");
_Static_assert(offsetof(struct fam_spinlock, tickets.tail) == 4, "tail at offset 4");
_Static_assert(offsetof(struct fam_atomic_args_32, lfs_fd) == 0 && offsetof(struct fam_atomic_args_32, offset) == 8 &&
               offsetof(struct fam_atomic_args_32, p32_0) == 16 && offsetof(struct fam_atomic_args_32, p32_1) == 20, "args_32 layout");
_Static_assert(offsetof(struct fam_atomic_args_64, p64_0) == 16 && offsetof(struct fam_atomic_args_64, p64_1) == 24, "args_64 layout");
_Static_assert(offsetof(struct fam_atomic_args_128, p128_0) == 16 && offsetof(struct fam_atomic_args_128, p128_1) == 32, "args_128 layout");

/* ioctl numbers: _IOWR(0xaa, nr, struct) except 128-bit read, _IOR. */
_Static_assert(FAM_ATOMIC_32_FETCH_AND_ADD == _IOWR(0xaa, 0x11, struct fam_atomic_args_32), "ioctl");
_Static_assert(FAM_ATOMIC_64_FETCH_AND_ADD == _IOWR(0xaa, 0x12, struct fam_atomic_args_64), "ioctl");
_Static_assert(FAM_ATOMIC_32_SWAP == _IOWR(0xaa, 0x21, struct fam_atomic_args_32), "ioctl");
_Static_assert(FAM_ATOMIC_64_SWAP == _IOWR(0xaa, 0x22, struct fam_atomic_args_64), "ioctl");
_Static_assert(FAM_ATOMIC_128_SWAP == _IOWR(0xaa, 0x23, struct fam_atomic_args_128), "ioctl");
_Static_assert(FAM_ATOMIC_32_COMPARE_AND_STORE == _IOWR(0xaa, 0x31, struct fam_atomic_args_32), "ioctl");
_Static_assert(FAM_ATOMIC_64_COMPARE_AND_STORE == _IOWR(0xaa, 0x32, struct fam_atomic_args_64), "ioctl");
_Static_assert(FAM_ATOMIC_128_COMPARE_AND_STORE == _IOWR(0xaa, 0x33, struct fam_atomic_args_128), "ioctl");
_Static_assert(FAM_ATOMIC_128_READ == _IOR(0xaa, 0x43, struct fam_atomic_args_128), "ioctl");

struct __attribute__((aligned(64))) vars {
        int32_t a32;
        int64_t a64 __attribute__((aligned(8)));
        int64_t a128[2] __attribute__((aligned(16)));
        struct fam_spinlock lock;
};

int main(void) {
        /* Single-process semantics, on a registered anonymous shared page; the deprecated
         * names must behave exactly as the current ones. */
        struct vars *v = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(v != MAP_FAILED, "mmap");
        CHECK(fam_atomic_register_region(v, 4096, -1, 0) == 0, "register");

        fam_atomic_32_write(&v->a32, 5);
        CHECK(fam_atomic_32_fetch_and_add_unpadded(&v->a32, 3) == 5, "fetch_and_add_unpadded returns old");
        CHECK(fam_atomic_32_read_unpadded(&v->a32) == 8, "read_unpadded");
        CHECK(fam_atomic_32_compare_and_store_unpadded(&v->a32, 8, 1) == 8 && v->a32 == 1, "cas32 unpadded");
        CHECK(fam_atomic_32_compare_and_store_unpadded(&v->a32, 8, 2) == 1 && v->a32 == 1, "failed cas32 leaves value");
        CHECK(fam_atomic_32_swap_unpadded(&v->a32, 6) == 1 && v->a32 == 6, "swap32 unpadded");
        CHECK(fam_atomic_32_fetch_or_unpadded(&v->a32, 1) == 6 && v->a32 == 7, "or32");
        CHECK(fam_atomic_32_fetch_and_unpadded(&v->a32, 3) == 7 && v->a32 == 3, "and32");
        CHECK(fam_atomic_32_fetch_xor_unpadded(&v->a32, 1) == 3 && v->a32 == 2, "xor32");
        fam_atomic_32_write_unpadded(&v->a32, INT32_MAX);
        CHECK(fam_atomic_32_fetch_add(&v->a32, 1) == INT32_MAX && v->a32 == INT32_MIN, "32-bit wrap");

        fam_atomic_64_write_unpadded(&v->a64, INT64_MAX);
        CHECK(fam_atomic_64_fetch_and_add_unpadded(&v->a64, 1) == INT64_MAX && fam_atomic_64_read_unpadded(&v->a64) == INT64_MIN, "64-bit wrap");
        CHECK(fam_atomic_64_compare_and_store_unpadded(&v->a64, INT64_MIN, 42) == INT64_MIN && v->a64 == 42, "cas64");
        CHECK(fam_atomic_64_swap_unpadded(&v->a64, 7) == 42, "swap64");
        CHECK(fam_atomic_64_fetch_or_unpadded(&v->a64, 8) == 7 && fam_atomic_64_fetch_and_unpadded(&v->a64, 12) == 15 &&
              fam_atomic_64_fetch_xor_unpadded(&v->a64, 4) == 12 && v->a64 == 8, "64-bit and/or/xor");

        int64_t val[2] = { 1, 2 }, cmp[2] = { 1, 2 }, st[2] = { 3, -4 }, res[2] = { 0, 0 };
        fam_atomic_128_write_unpadded(v->a128, val);
        CHECK(v->a128[0] == 1 && v->a128[1] == 2, "128 write: [0] at address, [1] at address+8");
        fam_atomic_128_read_unpadded(v->a128, res);
        CHECK(res[0] == 1 && res[1] == 2, "128 read");
        fam_atomic_128_compare_and_store_unpadded(v->a128, cmp, st, res);
        CHECK(res[0] == 1 && res[1] == 2 && v->a128[0] == 3 && v->a128[1] == -4, "128 cas success returns compare");
        fam_atomic_128_compare_store(v->a128, cmp, val, res);
        CHECK(res[0] == 3 && res[1] == -4 && v->a128[0] == 3, "128 cas failure returns current, stores nothing");
        fam_atomic_128_swap_unpadded(v->a128, val, res);
        CHECK(res[0] == 3 && res[1] == -4 && v->a128[0] == 1 && v->a128[1] == 2, "128 swap");

        /* The libfam-atomic example, step by step. */
        v->lock = FAM_SPINLOCK_INITIALIZER;
        fam_spin_lock_init(&v->lock);
        fam_spin_lock(&v->lock);
        CHECK(!fam_spin_trylock(&v->lock), "trylock on a held lock fails");
        fam_spin_unlock(&v->lock);
        CHECK(fam_spin_trylock(&v->lock), "trylock on a free lock succeeds");
        CHECK(v->lock.tickets.head == 1 && v->lock.tickets.tail == 2, "ticket layout: head %d tail %d", v->lock.tickets.head, v->lock.tickets.tail);
        fam_spin_unlock(&v->lock);
        CHECK(v->lock.tickets.head == v->lock.tickets.tail, "unlocked means head == tail");

        /* Registration errors. */
        errno = 0;
        CHECK(fam_atomic_register_region(v, 0, -1, 0) == -1 && errno == EINVAL, "empty region rejected");
        CHECK(fam_atomic_register_region(NULL, 4096, -1, 0) == -1 && errno == EINVAL, "NULL region rejected");
        fam_atomic_unregister_region(v, 4096);
        munmap(v, 4096);
        return test_exit();
}
