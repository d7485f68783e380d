/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fabric atomics, source-compatible with libfam-atomic 2.x (fam_atomic.h).
 *
 * Written from the API description in docs/fam-atomics.md; programs written for
 * libfam-atomic compile unchanged against this header and link with -lfame (or
 * `pkg-config --libs fam_atomic`).  Every address passed here must lie inside a region
 * registered with fam_atomic_register_region() (fame_open() registers its mapping), and be
 * naturally aligned (16 bytes for the 128-bit operations): otherwise the process gets SIGSEGV
 * (unregistered) or SIGBUS (misaligned) with one line on stderr saying why.
 */
#ifndef _FAM_ATOMIC_H_
#define _FAM_ATOMIC_H_

#include <stdint.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Arguments of the zbridge ioctls of The Machine (kept for source compatibility). */
struct fam_atomic_args_32 {
        int lfs_fd;
        int64_t offset;
        int32_t p32_0, p32_1;
};

struct fam_atomic_args_64 {
        int lfs_fd;
        int64_t offset;
        int64_t p64_0, p64_1;
};

struct fam_atomic_args_128 {
        int lfs_fd;
        int64_t offset;
        int64_t p128_0[2], p128_1[2];
};

#define _FAM_ATOMIC_MAGIC                       0xaa
#define _FAM_ATOMIC_32_FETCH_AND_ADD_NR         0x11
#define _FAM_ATOMIC_64_FETCH_AND_ADD_NR         0x12
#define _FAM_ATOMIC_32_SWAP_NR                  0x21
#define _FAM_ATOMIC_64_SWAP_NR                  0x22
#define _FAM_ATOMIC_128_SWAP_NR                 0x23
#define _FAM_ATOMIC_32_COMPARE_AND_STORE_NR     0x31
#define _FAM_ATOMIC_64_COMPARE_AND_STORE_NR     0x32
#define _FAM_ATOMIC_128_COMPARE_AND_STORE_NR    0x33
#define _FAM_ATOMIC_128_READ_NR                 0x43
#define _FAM_ATOMIC_WR(nr, type)                _IOWR(_FAM_ATOMIC_MAGIC, (nr), type)
#define _FAM_ATOMIC_R(nr, type)                 _IOR(_FAM_ATOMIC_MAGIC, (nr), type)

#define FAM_ATOMIC_32_FETCH_AND_ADD       _FAM_ATOMIC_WR(_FAM_ATOMIC_32_FETCH_AND_ADD_NR, struct fam_atomic_args_32)
#define FAM_ATOMIC_64_FETCH_AND_ADD       _FAM_ATOMIC_WR(_FAM_ATOMIC_64_FETCH_AND_ADD_NR, struct fam_atomic_args_64)
#define FAM_ATOMIC_32_SWAP                _FAM_ATOMIC_WR(_FAM_ATOMIC_32_SWAP_NR, struct fam_atomic_args_32)
#define FAM_ATOMIC_64_SWAP                _FAM_ATOMIC_WR(_FAM_ATOMIC_64_SWAP_NR, struct fam_atomic_args_64)
#define FAM_ATOMIC_128_SWAP               _FAM_ATOMIC_WR(_FAM_ATOMIC_128_SWAP_NR, struct fam_atomic_args_128)
#define FAM_ATOMIC_32_COMPARE_AND_STORE   _FAM_ATOMIC_WR(_FAM_ATOMIC_32_COMPARE_AND_STORE_NR, struct fam_atomic_args_32)
#define FAM_ATOMIC_64_COMPARE_AND_STORE   _FAM_ATOMIC_WR(_FAM_ATOMIC_64_COMPARE_AND_STORE_NR, struct fam_atomic_args_64)
#define FAM_ATOMIC_128_COMPARE_AND_STORE  _FAM_ATOMIC_WR(_FAM_ATOMIC_128_COMPARE_AND_STORE_NR, struct fam_atomic_args_128)
#define FAM_ATOMIC_128_READ               _FAM_ATOMIC_R(_FAM_ATOMIC_128_READ_NR, struct fam_atomic_args_128)

/* ---- regions ---------------------------------------------------------------------------- */

/* Records [region_start, region_start + region_length) as FAM mapped from fd at offset.
 * Returns 0, or -1 with errno set (ENOMEM; EINVAL for an empty or wrapping range). */
int fam_atomic_register_region(void *region_start, size_t region_length, int fd, off_t offset);

/* Forgets the region that contains region_start (region_length is ignored). */
void fam_atomic_unregister_region(void *region_start, size_t region_length);

/* ---- operations: every one is a full barrier ---------------------------------------------- */

int32_t fam_atomic_32_fetch_add(int32_t *address, int32_t increment);
int64_t fam_atomic_64_fetch_add(int64_t *address, int64_t increment);

int32_t fam_atomic_32_swap(int32_t *address, int32_t value);
int64_t fam_atomic_64_swap(int64_t *address, int64_t value);
void fam_atomic_128_swap(int64_t *address, int64_t value[2], int64_t result[2]);

int32_t fam_atomic_32_compare_store(int32_t *address, int32_t compare, int32_t store);
int64_t fam_atomic_64_compare_store(int64_t *address, int64_t compare, int64_t store);
void fam_atomic_128_compare_store(int64_t *address, int64_t compare[2], int64_t store[2],
                                  int64_t result[2]);

int32_t fam_atomic_32_read(int32_t *address);
int64_t fam_atomic_64_read(int64_t *address);
void fam_atomic_128_read(int64_t *address, int64_t result[2]);

void fam_atomic_32_write(int32_t *address, int32_t value);
void fam_atomic_64_write(int64_t *address, int64_t value);
void fam_atomic_128_write(int64_t *address, int64_t value[2]);

int32_t fam_atomic_32_fetch_and(int32_t *address, int32_t arg);
int64_t fam_atomic_64_fetch_and(int64_t *address, int64_t arg);
int32_t fam_atomic_32_fetch_or(int32_t *address, int32_t arg);
int64_t fam_atomic_64_fetch_or(int64_t *address, int64_t arg);
int32_t fam_atomic_32_fetch_xor(int32_t *address, int32_t arg);
int64_t fam_atomic_64_fetch_xor(int64_t *address, int64_t arg);

/* ---- ticket spinlock on one 64-bit word ------------------------------------------------ */

typedef int32_t __fam_ticket_t;
typedef int64_t __fam_ticketpair_t;

struct __fam_tickets {
        __fam_ticket_t head;            /* offset 0: the low half on little-endian machines */
        __fam_ticket_t tail;            /* offset 4 */
};

struct fam_spinlock {
        union {
                __fam_ticketpair_t head_tail;
                struct __fam_tickets tickets;
        };
};

#define FAM_SPINLOCK_INITIALIZER ((struct fam_spinlock) { 0 })

extern void fam_spin_lock_init(struct fam_spinlock *lock);
extern void fam_spin_lock(struct fam_spinlock *lock);
extern bool fam_spin_trylock(struct fam_spinlock *lock);
extern void fam_spin_unlock(struct fam_spinlock *lock);

/* ---- deprecated names of libfam-atomic 1.x, mapped onto the functions above ----------- */

#define _FAM_ATOMIC_DEPRECATED static inline __attribute__((deprecated, unused))

_FAM_ATOMIC_DEPRECATED int32_t
fam_atomic_32_fetch_and_add_unpadded(int32_t *address, int32_t increment)
{ return fam_atomic_32_fetch_add(address, increment); }

_FAM_ATOMIC_DEPRECATED int64_t
fam_atomic_64_fetch_and_add_unpadded(int64_t *address, int64_t increment)
{ return fam_atomic_64_fetch_add(address, increment); }

_FAM_ATOMIC_DEPRECATED int32_t
fam_atomic_32_swap_unpadded(int32_t *address, int32_t value)
{ return fam_atomic_32_swap(address, value); }

_FAM_ATOMIC_DEPRECATED int64_t
fam_atomic_64_swap_unpadded(int64_t *address, int64_t value)
{ return fam_atomic_64_swap(address, value); }

_FAM_ATOMIC_DEPRECATED void
fam_atomic_128_swap_unpadded(int64_t *address, int64_t value[2], int64_t result[2])
{ fam_atomic_128_swap(address, value, result); }

_FAM_ATOMIC_DEPRECATED int32_t
fam_atomic_32_compare_and_store_unpadded(int32_t *address, int32_t compare, int32_t store)
{ return fam_atomic_32_compare_store(address, compare, store); }

_FAM_ATOMIC_DEPRECATED int64_t
fam_atomic_64_compare_and_store_unpadded(int64_t *address, int64_t compare, int64_t store)
{ return fam_atomic_64_compare_store(address, compare, store); }

_FAM_ATOMIC_DEPRECATED void
fam_atomic_128_compare_and_store_unpadded(int64_t *address, int64_t compare[2], int64_t store[2],
                                          int64_t result[2])
{ fam_atomic_128_compare_store(address, compare, store, result); }

_FAM_ATOMIC_DEPRECATED int32_t
fam_atomic_32_read_unpadded(int32_t *address)
{ return fam_atomic_32_read(address); }

_FAM_ATOMIC_DEPRECATED int64_t
fam_atomic_64_read_unpadded(int64_t *address)
{ return fam_atomic_64_read(address); }

_FAM_ATOMIC_DEPRECATED void
fam_atomic_128_read_unpadded(int64_t *address, int64_t result[2])
{ fam_atomic_128_read(address, result); }

_FAM_ATOMIC_DEPRECATED void
fam_atomic_32_write_unpadded(int32_t *address, int32_t value)
{ fam_atomic_32_write(address, value); }

_FAM_ATOMIC_DEPRECATED void
fam_atomic_64_write_unpadded(int64_t *address, int64_t value)
{ fam_atomic_64_write(address, value); }

_FAM_ATOMIC_DEPRECATED void
fam_atomic_128_write_unpadded(int64_t *address, int64_t value[2])
{ fam_atomic_128_write(address, value); }

_FAM_ATOMIC_DEPRECATED int32_t
fam_atomic_32_fetch_and_unpadded(int32_t *address, int32_t arg)
{ return fam_atomic_32_fetch_and(address, arg); }

_FAM_ATOMIC_DEPRECATED int64_t
fam_atomic_64_fetch_and_unpadded(int64_t *address, int64_t arg)
{ return fam_atomic_64_fetch_and(address, arg); }

_FAM_ATOMIC_DEPRECATED int32_t
fam_atomic_32_fetch_or_unpadded(int32_t *address, int32_t arg)
{ return fam_atomic_32_fetch_or(address, arg); }

_FAM_ATOMIC_DEPRECATED int64_t
fam_atomic_64_fetch_or_unpadded(int64_t *address, int64_t arg)
{ return fam_atomic_64_fetch_or(address, arg); }

_FAM_ATOMIC_DEPRECATED int32_t
fam_atomic_32_fetch_xor_unpadded(int32_t *address, int32_t arg)
{ return fam_atomic_32_fetch_xor(address, arg); }

_FAM_ATOMIC_DEPRECATED int64_t
fam_atomic_64_fetch_xor_unpadded(int64_t *address, int64_t arg)
{ return fam_atomic_64_fetch_xor(address, arg); }

#undef _FAM_ATOMIC_DEPRECATED

#ifdef __cplusplus
}
#endif

#endif /* _FAM_ATOMIC_H_ */
