/* rseq(2): restartable sequences registration. glibc registers the main thread's area at
 * start-up (at __builtin_thread_pointer() + __rseq_offset) with length sizeof(struct rseq)
 * (32, the original ABI size) and signature RSEQ_SIG. Cases that unregister put the
 * registration back before they return. */
#include "harness.h"

#include <sched.h>
#include <stdint.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RSEQ_LEN 32
#define UNREG RSEQ_FLAG_UNREGISTER

static struct rseq *area(void) {
    return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

static long krseq(void *a, uint32_t len, int flags, uint32_t sig) {
    return syscall(SYS_rseq, a, len, flags, sig);
}

static unsigned raw_getcpu(void) {
    unsigned cpu = 0xffffffff;
    syscall(SYS_getcpu, &cpu, NULL, NULL);
    return cpu;
}

TEST(glibc_registered_at_startup) {
    /* __rseq_size is 0 when glibc's registration failed. */
    CHECK(__rseq_size > 0);
    CHECK(__rseq_size <= RSEQ_LEN);
    CHECK_EQ((uintptr_t)area() % 32, 0);
    CHECK((int32_t)area()->cpu_id >= 0);
}

/* "EBUSY Restartable sequence is already registered for this thread" (same area, length and
 * signature). */
TEST(register_again_is_ebusy) {
    CHECK_ERR(krseq(area(), RSEQ_LEN, 0, RSEQ_SIG), EBUSY);
}

/* While registered, a different area or length is EINVAL and a different signature EPERM. */
TEST(register_mismatch_while_registered) {
    static struct rseq other __attribute__((aligned(32)));
    CHECK_ERR(krseq(&other, RSEQ_LEN, 0, RSEQ_SIG), EINVAL);
    CHECK_ERR(krseq(area(), 20, 0, RSEQ_SIG), EINVAL);
    CHECK_ERR(krseq(area(), RSEQ_LEN, 0, RSEQ_SIG + 1), EPERM);
    /* Still registered as before. */
    CHECK_ERR(krseq(area(), RSEQ_LEN, 0, RSEQ_SIG), EBUSY);
}

/* "EPERM The sig argument on unregistration does not match the signature received on
 * registration." */
TEST(unregister_wrong_signature_is_eperm) {
    CHECK_ERR(krseq(area(), RSEQ_LEN, UNREG, RSEQ_SIG ^ 1), EPERM);
    CHECK_ERR(krseq(area(), RSEQ_LEN, 0, RSEQ_SIG), EBUSY);
}

/* "EINVAL ... rseq_len does not match the size received on registration" and an unregister
 * of an area other than the registered one. */
TEST(unregister_wrong_length_or_area_is_einval) {
    static struct rseq other __attribute__((aligned(32)));
    CHECK_ERR(krseq(area(), 16, UNREG, RSEQ_SIG), EINVAL);
    CHECK_ERR(krseq(area(), 64, UNREG, RSEQ_SIG), EINVAL);
    CHECK_ERR(krseq(&other, RSEQ_LEN, UNREG, RSEQ_SIG), EINVAL);
    CHECK_ERR(krseq(area(), RSEQ_LEN, 0, RSEQ_SIG), EBUSY);
}

/* "EINVAL Either flags contains an invalid value, ..." */
TEST(unknown_flags_are_einval) {
    CHECK_ERR(krseq(area(), RSEQ_LEN, 2, RSEQ_SIG), EINVAL);
    CHECK_ERR(krseq(area(), RSEQ_LEN, UNREG | 2, RSEQ_SIG), EINVAL);
    CHECK_ERR(krseq(area(), RSEQ_LEN, 0x80000000, RSEQ_SIG), EINVAL);
    CHECK_ERR(krseq(area(), RSEQ_LEN, 0, RSEQ_SIG), EBUSY);
}

/* After unregistering, the same area can be registered again, and the kernel fills in
 * cpu_id and cpu_id_start before returning to user space. */
TEST(unregister_then_register_again) {
    struct rseq *r = area();
    CHECK_EQ(krseq(r, RSEQ_LEN, UNREG, RSEQ_SIG), 0);
    /* Not registered any more: a second unregister is refused. */
    CHECK_ERR(krseq(r, RSEQ_LEN, UNREG, RSEQ_SIG), EINVAL);
    /* User space initialises the fields before registering. */
    r->cpu_id = RSEQ_CPU_ID_UNINITIALIZED;
    r->cpu_id_start = 0xdead;
    CHECK_EQ(krseq(r, RSEQ_LEN, 0, RSEQ_SIG), 0);
    CHECK((int32_t)r->cpu_id >= 0);
    CHECK(r->cpu_id_start != 0xdead);
    CHECK(r->cpu_id_start < 0x10000);
    CHECK_ERR(krseq(r, RSEQ_LEN, 0, RSEQ_SIG), EBUSY);
}

/* On unregistration the kernel resets cpu_id to RSEQ_CPU_ID_UNINITIALIZED (-1) and
 * cpu_id_start to 0 (linux/rseq.h: cpu_id "-1 if uninitialized"). */
TEST(unregister_resets_cpu_id) {
    struct rseq *r = area();
    CHECK_EQ(krseq(r, RSEQ_LEN, UNREG, RSEQ_SIG), 0);
    int32_t cpu = (int32_t)r->cpu_id;
    uint32_t start = r->cpu_id_start;
    CHECK_EQ(krseq(r, RSEQ_LEN, 0, RSEQ_SIG), 0);
    CHECK_EQ(cpu, RSEQ_CPU_ID_UNINITIALIZED);
    CHECK_EQ(start, 0);
}

/* With no registration, a misaligned area or a short length is EINVAL and an area outside
 * user space EFAULT. */
TEST(register_bad_area_or_length) {
    struct rseq *r = area();
    CHECK_EQ(krseq(r, RSEQ_LEN, UNREG, RSEQ_SIG), 0);
    long misaligned = krseq((char *)r + 4, RSEQ_LEN, 0, RSEQ_SIG);
    int e1 = errno;
    long short_len = krseq(r, 16, 0, RSEQ_SIG);
    int e2 = errno;
    long kernel = krseq((void *)0xffff800000000000UL, RSEQ_LEN, 0, RSEQ_SIG);
    int e3 = errno;
    CHECK_EQ(krseq(r, RSEQ_LEN, 0, RSEQ_SIG), 0);
    CHECK_EQ(misaligned, -1);
    CHECK_EQ(e1, EINVAL);
    CHECK_EQ(short_len, -1);
    CHECK_EQ(e2, EINVAL);
    CHECK_EQ(kernel, -1);
    CHECK_EQ(e3, EFAULT);
}

/* cpu_id is "the current CPU number on which the registered thread is running"; it agrees
 * with getcpu(2) (retried in case the thread migrates between the two reads). */
TEST(cpu_id_matches_getcpu) {
    struct rseq *r = area();
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        uint32_t before = __atomic_load_n(&r->cpu_id, __ATOMIC_RELAXED);
        unsigned cpu = raw_getcpu();
        uint32_t after = __atomic_load_n(&r->cpu_id, __ATOMIC_RELAXED);
        if (before == after) {
            CHECK_EQ(before, cpu);
            ok = 1;
        }
    }
    CHECK(ok);
    CHECK_EQ(r->cpu_id_start, r->cpu_id);
}

TEST(cpu_id_matches_sched_getcpu_and_affinity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    int cpu = (int)(int32_t)area()->cpu_id;
    CHECK(cpu >= 0 && cpu < CPU_SETSIZE);
    CHECK(CPU_ISSET(cpu, &set));
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        int a = (int)(int32_t)area()->cpu_id, b = sched_getcpu();
        int c = (int)(int32_t)area()->cpu_id;
        if (a == c) {
            CHECK_EQ(b, a);
            ok = 1;
        }
    }
    CHECK(ok);
}
