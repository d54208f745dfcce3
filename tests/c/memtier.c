/* memkind_memtier.h: builders (errors, copies), both policies (tier choices and the allocated
 * byte counters, exact in one thread), calloc / realloc / posix_memalign / usable_size, the
 * memtier_kind_* functions, ratio 0 (both policies), memtier_ctl_set names and values, a PMEM
 * tier, threads.
 * usage: memtier <writable dir for a PMEM kind>
 *
 * Only well-defined input: 1.14 crashes on NULL builders / memories / values (see
 * ours_only_memtier_input.c).
 */
#include "common.h"
#include <memkind_memtier.h>
#include <pthread.h>

#define STATIC MEMTIER_POLICY_STATIC_RATIO
#define DYNAMIC MEMTIER_POLICY_DYNAMIC_THRESHOLD

static memkind_t PMEM_KIND;

static const char *kname(memkind_t k)
{
    return k && k == PMEM_KIND ? "PMEM" : kind_name(k);
}

static size_t asz(memkind_t k)
{
    return memtier_kind_allocated_size(k);
}

static void sizes(const char *what)
{
    printf("%s: DEFAULT=%zu REGULAR=%zu\n", what, asz(MEMKIND_DEFAULT), asz(MEMKIND_REGULAR));
}

static struct memtier_memory *two_tiers(memtier_policy_t pol, unsigned r0, unsigned r1)
{
    struct memtier_builder *b = memtier_builder_new(pol);
    memtier_builder_add_tier(b, MEMKIND_DEFAULT, r0);
    memtier_builder_add_tier(b, MEMKIND_REGULAR, r1);
    struct memtier_memory *m = memtier_builder_construct_memtier_memory(b);
    memtier_builder_delete(b);
    return m;
}

static void builders(void)
{
    printf("new(MAX_VALUE) null=%d\n", memtier_builder_new(MEMTIER_POLICY_MAX_VALUE) == NULL);
    printf("new(7) null=%d\n", memtier_builder_new((memtier_policy_t)7) == NULL);
    printf("new(-1) null=%d\n", memtier_builder_new((memtier_policy_t)-1) == NULL);
    for (int pol = 0; pol < 2; pol++) {
        struct memtier_builder *b = memtier_builder_new((memtier_policy_t)pol);
        printf("policy %d: new ok=%d\n", pol, b != NULL);
        printf("  construct empty null=%d\n", memtier_builder_construct_memtier_memory(b) == NULL);
        printf("  add NULL kind rc=%d\n", memtier_builder_add_tier(b, NULL, 1));
        printf("  add DEFAULT rc=%d\n", memtier_builder_add_tier(b, MEMKIND_DEFAULT, 1));
        printf("  add DEFAULT again rc=%d\n", memtier_builder_add_tier(b, MEMKIND_DEFAULT, 3));
        struct memtier_memory *m = memtier_builder_construct_memtier_memory(b);
        printf("  construct 1 tier null=%d\n", m == NULL);
        if (m) /* 1.14 crashes on NULL */
            memtier_delete_memtier_memory(m);
        printf("  add REGULAR rc=%d\n", memtier_builder_add_tier(b, MEMKIND_REGULAR, 4));
        printf("  add INTERLEAVE rc=%d\n", memtier_builder_add_tier(b, MEMKIND_INTERLEAVE, 2));
        printf("  add HBW (unavailable) rc=%d\n", memtier_builder_add_tier(b, MEMKIND_HBW, 1));
        m = memtier_builder_construct_memtier_memory(b);
        struct memtier_memory *m2 = memtier_builder_construct_memtier_memory(b);
        printf("  construct 4 tiers ok=%d again ok=%d distinct=%d\n", m != NULL, m2 != NULL,
               m != m2);
        float f = 0.5f;
        printf("  ctl_set trigger rc=%d\n",
               memtier_ctl_set(b, "policy.dynamic_threshold.trigger", &f));
        memtier_delete_memtier_memory(m2);
        memtier_builder_delete(b);
        /* The memory outlives its builder. */
        void *p = memtier_malloc(m, 100);
        printf("  malloc after builder_delete ok=%d\n", p != NULL);
        memtier_free(p);
        memtier_delete_memtier_memory(m);
    }
}

static void static_ratio(void)
{
    struct memtier_memory *m = two_tiers(STATIC, 1, 4);
    enum { N = 10000 };
    static void *ptrs[N];
    sizes("static 1:4 before");
    for (int i = 0; i < N; i++)
        ptrs[i] = memtier_malloc(m, 1000);
    size_t d = asz(MEMKIND_DEFAULT), r = asz(MEMKIND_REGULAR);
    sizes("static 1:4 after 10000 x 1000");
    /* Counters reach the policy in steps of 50 KiB per thread and kind: 2% of 10 MB. */
    double ratio = (double)r / (double)d;
    printf("static 1:4 ratio within 3%%: %s\n", ratio > 3.88 && ratio < 4.12 ? "ok" : "FAIL");
    int in_default = 0;
    for (int i = 0; i < N; i++)
        in_default += memkind_detect_kind(ptrs[i]) == MEMKIND_DEFAULT;
    printf("static 1:4 blocks in DEFAULT=%d REGULAR=%d\n", in_default, N - in_default);
    for (int i = 0; i < N; i += 2)
        memtier_free(ptrs[i]);
    sizes("static 1:4 after freeing half");
    for (int i = 1; i < N; i += 2)
        memtier_free(ptrs[i]);
    sizes("static 1:4 after freeing all");
    memtier_delete_memtier_memory(m);

    /* Mixed sizes, three tiers 2:1:1. */
    struct memtier_builder *b = memtier_builder_new(STATIC);
    memtier_builder_add_tier(b, MEMKIND_DEFAULT, 2);
    memtier_builder_add_tier(b, MEMKIND_REGULAR, 1);
    memtier_builder_add_tier(b, MEMKIND_INTERLEAVE, 1);
    m = memtier_builder_construct_memtier_memory(b);
    memtier_builder_delete(b);
    static const size_t SZ[] = {16, 100, 1000, 5000, 70000, 24, 3000};
    for (int i = 0; i < 3000; i++)
        ptrs[i] = memtier_malloc(m, SZ[i % 7]);
    size_t d3 = asz(MEMKIND_DEFAULT), r3 = asz(MEMKIND_REGULAR), i3 = asz(MEMKIND_INTERLEAVE);
    printf("static 2:1:1 mixed: DEFAULT=%zu REGULAR=%zu INTERLEAVE=%zu\n", d3, r3, i3);
    double t = (double)(d3 + r3 + i3);
    printf("static 2:1:1 shares within 3%%: %s\n",
           d3 / t > 0.47 && d3 / t < 0.53 && r3 / t > 0.22 && r3 / t < 0.28 && i3 / t > 0.22 &&
                   i3 / t < 0.28
               ? "ok"
               : "FAIL");
    for (int i = 0; i < 3000; i++)
        memtier_free(ptrs[i]);
    printf("static 2:1:1 after free: %zu %zu %zu\n", asz(MEMKIND_DEFAULT), asz(MEMKIND_REGULAR),
           asz(MEMKIND_INTERLEAVE));
    memtier_delete_memtier_memory(m);

    /* One tier: everything there. */
    b = memtier_builder_new(STATIC);
    memtier_builder_add_tier(b, MEMKIND_REGULAR, 5);
    m = memtier_builder_construct_memtier_memory(b);
    memtier_builder_delete(b);
    int all = 1;
    for (int i = 0; i < 100; i++) {
        ptrs[i] = memtier_malloc(m, 64);
        all &= memkind_detect_kind(ptrs[i]) == MEMKIND_REGULAR;
    }
    printf("single tier: all REGULAR=%d REGULAR=%zu\n", all, asz(MEMKIND_REGULAR));
    for (int i = 0; i < 100; i++)
        memtier_free(ptrs[i]);
    memtier_delete_memtier_memory(m);
}

static void api(void)
{
    struct memtier_memory *m = two_tiers(STATIC, 1, 1);
    sizes("api start");
    printf("usable_size(NULL)=%zu\n", memtier_usable_size(NULL));
    void *p = memtier_malloc(m, 100);
    printf("malloc 100: kind=%s usable=%zu\n", kname(memkind_detect_kind(p)), memtier_usable_size(p));
    sizes("after malloc 100");
    errno = 0;
    void *z = memtier_malloc(m, 0);
    printf("malloc 0: null=%d errno=%s\n", z == NULL, errno_name(errno));

    char *c = memtier_calloc(m, 100, 10);
    printf("calloc 100x10: ok=%d zero=%d usable=%zu kind=%s\n", c != NULL, c && all_zero(c, 1000),
           memtier_usable_size(c), kname(memkind_detect_kind(c)));
    sizes("after calloc");
    memtier_free(c);
    c = memtier_calloc(m, 100, 10);
    printf("calloc again zero=%d\n", c && all_zero(c, 1000));
    memtier_free(c);
    errno = 0;
    c = memtier_calloc(m, 0, 10);
    printf("calloc 0x10: null=%d\n", c == NULL);
    sizes("after calloc free");

    /* realloc: NULL → malloc; grow keeps data and kind; 0 frees. */
    char *r = memtier_realloc(m, NULL, 200);
    memkind_t rk = memkind_detect_kind(r);
    fill(r, 200, 9);
    printf("realloc(NULL,200): ok=%d kind=%s usable=%zu\n", r != NULL, kname(rk),
           memtier_usable_size(r));
    sizes("after realloc(NULL)");
    for (int i = 0; i < 20; i++) /* tilt the ratio: the block must stay in its kind */
        memtier_free(memtier_kind_malloc(rk == MEMKIND_DEFAULT ? MEMKIND_REGULAR : MEMKIND_DEFAULT,
                                         16));
    r = memtier_realloc(m, r, 100000);
    printf("realloc grow: ok=%d data=%d same_kind=%d usable=%zu\n", r != NULL,
           r && check_fill(r, 200, 9), memkind_detect_kind(r) == rk, memtier_usable_size(r));
    sizes("after realloc grow");
    r = memtier_realloc(m, r, 50);
    printf("realloc shrink: data=%d usable=%zu\n", check_fill(r, 50, 9), memtier_usable_size(r));
    sizes("after realloc shrink");
    printf("realloc(p,0) null=%d\n", memtier_realloc(m, r, 0) == NULL);
    sizes("after realloc 0");
    printf("realloc(NULL,0) null=%d\n", memtier_realloc(m, NULL, 0) == NULL);

    /* posix_memalign. */
    void *a = NULL;
    int rc = memtier_posix_memalign(m, &a, 3, 64);
    printf("posix_memalign align 3 rc=%s\n", errno_name(rc));
    a = NULL;
    rc = memtier_posix_memalign(m, &a, 0, 64);
    printf("posix_memalign align 0 rc=%s\n", errno_name(rc));
    a = NULL;
    rc = memtier_posix_memalign(m, &a, 4, 64);
    printf("posix_memalign align 4 rc=%s\n", errno_name(rc));
    sizes("after EINVAL");
    for (size_t al = 8; al <= 2 * MiB; al *= 8) {
        a = NULL;
        rc = memtier_posix_memalign(m, &a, al, 1000);
        printf("posix_memalign align %zu rc=%s aligned=%d usable=%zu\n", al, errno_name(rc),
               a && aligned(a, al), memtier_usable_size(a));
        memtier_free(a);
    }
    a = (void *)1;
    rc = memtier_posix_memalign(m, &a, 64, 0);
    printf("posix_memalign size 0 rc=%s null=%d\n", errno_name(rc), a == NULL);
    sizes("after posix_memalign");
    memtier_free(p);
    sizes("api end");
    memtier_delete_memtier_memory(m);
}

static void kind_api(void)
{
    memkind_t R = MEMKIND_REGULAR;
    sizes("kind api start");
    printf("INTERLEAVE allocated=%zu HBW allocated=%zu\n", asz(MEMKIND_INTERLEAVE), asz(MEMKIND_HBW));
    void *p = memtier_kind_malloc(R, 1000);
    printf("kind_malloc REGULAR 1000: kind=%s usable=%zu\n", kname(memkind_detect_kind(p)),
           memtier_usable_size(p));
    sizes("after kind_malloc");
    errno = 0;
    void *h = memtier_kind_malloc(MEMKIND_HBW, 100);
    printf("kind_malloc HBW: null=%d errno=%s allocated=%zu\n", h == NULL, errno_name(errno),
           asz(MEMKIND_HBW));
    printf("kind_malloc size 0 null=%d\n", memtier_kind_malloc(R, 0) == NULL);
    char *c = memtier_kind_calloc(R, 3, 1000);
    printf("kind_calloc: zero=%d usable=%zu\n", all_zero(c, 3000), memtier_usable_size(c));
    sizes("after kind_calloc");
    c = memtier_kind_realloc(R, c, 20000);
    printf("kind_realloc grow usable=%zu\n", memtier_usable_size(c));
    sizes("after kind_realloc");
    void *n = memtier_kind_realloc(R, NULL, 50);
    printf("kind_realloc(NULL,50) kind=%s\n", kname(memkind_detect_kind(n)));
    printf("kind_realloc(p,0) null=%d\n", memtier_kind_realloc(R, n, 0) == NULL);
    sizes("after kind_realloc 0");
    void *a = NULL;
    int rc = memtier_kind_posix_memalign(R, &a, 4096, 100);
    printf("kind_posix_memalign rc=%s aligned=%d\n", errno_name(rc), aligned(a, 4096));
    sizes("after kind_posix_memalign");
    void *d = memtier_kind_malloc(MEMKIND_DEFAULT, 5000);
    sizes("after kind_malloc DEFAULT");
    memtier_kind_free(R, p);
    memtier_kind_free(NULL, c);
    memtier_free(a);
    memtier_kind_free(MEMKIND_DEFAULT, d);
    memtier_kind_free(NULL, NULL);
    memtier_kind_free(R, NULL);
    memtier_free(NULL);
    sizes("kind api end");
}

/* Which tier each of a fixed sequence of sizes lands in, as counts and a hash. */
static void run_sequence(const char *what, struct memtier_memory *m, int n, size_t mod,
                         memkind_t *tiers, int ntiers)
{
    void **ptrs = calloc(n, sizeof *ptrs);
    unsigned long h = 1469598103934665603UL;
    int counts[4] = {0};
    for (int i = 0; i < n; i++) {
        size_t s = ((size_t)i * 7919) % mod + 1;
        ptrs[i] = memtier_malloc(m, s);
        memkind_t k = memkind_detect_kind(ptrs[i]);
        int t = 0;
        while (t < ntiers && tiers[t] != k)
            t++;
        counts[t < 4 ? t : 3]++;
        h = (h ^ (unsigned long)t) * 1099511628211UL;
        if (i % 5 == 4) { /* free some as we go */
            memtier_free(ptrs[i - 2]);
            ptrs[i - 2] = NULL;
        }
    }
    printf("%s: counts %d %d %d hash %lx\n", what, counts[0], counts[1], counts[2], h);
    for (int i = 0; i < ntiers; i++)
        printf("  tier %d allocated=%zu\n", i, asz(tiers[i]));
    for (int i = 0; i < n; i++)
        memtier_free(ptrs[i]);
    for (int i = 0; i < ntiers; i++)
        printf("  tier %d after free=%zu\n", i, asz(tiers[i]));
    free(ptrs);
}

static void dynamic_threshold(void)
{
    struct memtier_memory *m = two_tiers(DYNAMIC, 1, 1);
    void *s = memtier_malloc(m, 100), *l = memtier_malloc(m, 2000);
    printf("dynamic defaults: 100 -> %s, 2000 -> %s\n", kname(memkind_detect_kind(s)),
           kname(memkind_detect_kind(l)));
    memtier_free(s);
    memtier_free(l);
    memkind_t two[] = {MEMKIND_DEFAULT, MEMKIND_REGULAR};
    run_sequence("dynamic 1:1 sizes 1..2048", m, 20000, 2048, two, 2);
    memtier_delete_memtier_memory(m);
    m = two_tiers(DYNAMIC, 1, 4);
    run_sequence("dynamic 1:4 sizes 1..2048", m, 20000, 2048, two, 2);
    memtier_delete_memtier_memory(m);
    m = two_tiers(DYNAMIC, 3, 1);
    run_sequence("dynamic 3:1 sizes 1..1500", m, 20000, 1500, two, 2);
    memtier_delete_memtier_memory(m);

    /* Three tiers with thresholds, check_cnt, trigger and degree of our own. */
    struct memtier_builder *b = memtier_builder_new(DYNAMIC);
    memtier_builder_add_tier(b, MEMKIND_DEFAULT, 1);
    memtier_builder_add_tier(b, MEMKIND_REGULAR, 2);
    memtier_builder_add_tier(b, MEMKIND_INTERLEAVE, 1);
    size_t v;
    int rc = 0;
    v = 200, rc |= memtier_ctl_set(b, "policy.dynamic_threshold.thresholds[0].min", &v);
    v = 500, rc |= memtier_ctl_set(b, "policy.dynamic_threshold.thresholds[0].val", &v);
    v = 1000, rc |= memtier_ctl_set(b, "policy.dynamic_threshold.thresholds[0].max", &v);
    v = 1500, rc |= memtier_ctl_set(b, "policy.dynamic_threshold.thresholds[1].min", &v);
    v = 3000, rc |= memtier_ctl_set(b, "policy.dynamic_threshold.thresholds[1].val", &v);
    v = 6000, rc |= memtier_ctl_set(b, "policy.dynamic_threshold.thresholds[1].max", &v);
    unsigned cnt = 7;
    rc |= memtier_ctl_set(b, "policy.dynamic_threshold.check_cnt", &cnt);
    float trig = 0.1f, deg = 0.3f;
    rc |= memtier_ctl_set(b, "policy.dynamic_threshold.trigger", &trig);
    rc |= memtier_ctl_set(b, "policy.dynamic_threshold.degree", &deg);
    printf("3 tiers ctl_set rc=%d\n", rc);
    m = memtier_builder_construct_memtier_memory(b);
    printf("3 tiers construct ok=%d\n", m != NULL);
    s = memtier_malloc(m, 499);
    l = memtier_malloc(m, 500);
    void *x = memtier_malloc(m, 3000);
    printf("3 tiers: 499 -> %s, 500 -> %s, 3000 -> %s\n", kname(memkind_detect_kind(s)),
           kname(memkind_detect_kind(l)), kname(memkind_detect_kind(x)));
    memtier_free(s);
    memtier_free(l);
    memtier_free(x);
    memkind_t three[] = {MEMKIND_DEFAULT, MEMKIND_REGULAR, MEMKIND_INTERLEAVE};
    run_sequence("dynamic 1:2:1 sizes 1..8000", m, 30000, 8000, three, 3);
    memtier_delete_memtier_memory(m);
    memtier_builder_delete(b);

    /* check_cnt 0 and degree 0: thresholds never move. */
    b = memtier_builder_new(DYNAMIC);
    memtier_builder_add_tier(b, MEMKIND_DEFAULT, 1);
    memtier_builder_add_tier(b, MEMKIND_REGULAR, 1);
    cnt = 0;
    printf("check_cnt 0 rc=%d\n", memtier_ctl_set(b, "policy.dynamic_threshold.check_cnt", &cnt));
    m = memtier_builder_construct_memtier_memory(b);
    run_sequence("dynamic check_cnt 0", m, 5000, 2048, two, 2);
    memtier_delete_memtier_memory(m);
    cnt = 1;
    deg = 0.0f;
    memtier_ctl_set(b, "policy.dynamic_threshold.check_cnt", &cnt);
    memtier_ctl_set(b, "policy.dynamic_threshold.degree", &deg);
    m = memtier_builder_construct_memtier_memory(b);
    run_sequence("dynamic degree 0", m, 5000, 2048, two, 2);
    memtier_delete_memtier_memory(m);
    memtier_builder_delete(b);
}

/* Ratio 0: 1.14 keeps ratios as floats, so normalised ratios (r0 / ri) and the expected ratios
 * of DYNAMIC_THRESHOLD (ri+1 / ri) become 0, inf or NaN; add_tier returns 0, construct succeeds
 * and allocations go where the float comparisons send them. */
static void ratio_zero(void)
{
    static const unsigned R[][3] = {
        {0, 1, 0}, {1, 0, 0}, {0, 0, 0}, {1, 0, 2}, {0, 2, 1}, {3, 1, 0}, {0, 0, 5},
    };
    memkind_t kinds[] = {MEMKIND_DEFAULT, MEMKIND_REGULAR, MEMKIND_INTERLEAVE};
    for (int pol = 0; pol < 2; pol++) {
        for (unsigned i = 0; i < sizeof R / sizeof R[0]; i++) {
            int n = i < 3 ? 2 : 3;
            struct memtier_builder *b = memtier_builder_new((memtier_policy_t)pol);
            int rc[3] = {0};
            for (int t = 0; t < n; t++)
                rc[t] = memtier_builder_add_tier(b, kinds[t], R[i][t]);
            struct memtier_memory *m = memtier_builder_construct_memtier_memory(b);
            memtier_builder_delete(b);
            char what[96];
            snprintf(what, sizeof what, "ratio 0: policy %d ratios %u:%u:%u (%d tiers)", pol,
                     R[i][0], R[i][1], R[i][2], n);
            printf("%s: add rc=%d,%d,%d construct ok=%d\n", what, rc[0], rc[1], rc[2], m != NULL);
            if (!m) /* 1.14 crashes on NULL */
                continue;
            run_sequence(what, m, 4000, 3000, kinds, n);
            memtier_delete_memtier_memory(m);
        }
    }
}

static void ctl_names(void)
{
    struct memtier_builder *b = memtier_builder_new(DYNAMIC);
    memtier_builder_add_tier(b, MEMKIND_DEFAULT, 1);
    memtier_builder_add_tier(b, MEMKIND_REGULAR, 1);
    memtier_builder_add_tier(b, MEMKIND_INTERLEAVE, 1);
    static const char *NAMES[] = {
        "policy.dynamic_threshold.check_cnt",
        "policy.dynamic_threshold.trigger",
        "policy.dynamic_threshold.degree",
        "policy.dynamic_threshold.thresholds[0].val",
        "policy.dynamic_threshold.thresholds[0].min",
        "policy.dynamic_threshold.thresholds[0].max",
        "policy.dynamic_threshold.thresholds[1].val",
        "policy.dynamic_threshold.thresholds[2].val",
        "policy.dynamic_threshold.thresholds[3].min",
        "policy.dynamic_threshold.thresholds[100].max",
        "policy.dynamic_threshold.thresholds[-1].val",
        "policy.dynamic_threshold.thresholds[x].val",
        "policy.dynamic_threshold.thresholds[].val",
        "policy.dynamic_threshold.thresholds[0]",
        "policy.dynamic_threshold.thresholds[0].",
        "policy.dynamic_threshold.thresholds[0].value",
        "policy.dynamic_threshold.thresholds[0].va",
        "policy.dynamic_threshold.thresholds[0].VAL",
        "policy.dynamic_threshold.thresholds[0]val",
        "policy.dynamic_threshold.thresholds.val",
        "policy.dynamic_threshold.thresholds",
        "policy.dynamic_threshold.threshold[0].val",
        "policy.dynamic_threshold.check_cnt[5]",
        "policy.dynamic_threshold.trigger[",
        "policy.dynamic_threshold.checkcnt",
        "policy.dynamic_threshold.check_cnt ",
        "policy.dynamic_threshold.Degree",
        "policy.dynamic_threshold.thresholds[ 1].val",
        "policy.dynamic_threshold.thresholds[+1].min",
        "policy.dynamic_threshold.thresholds[01].max",
        "policy.dynamic_threshold.thresholds[0]. max",
        "policy.dynamic_threshold.thresholds[0].val trailing",
        "policy.dynamic_threshold.thresholds[4294967296].val",
        "policy.dynamic_threshold.thresholds[4294967297].min",
        "policy.dynamic_threshold.thresholds[2147483647].val",
        "policy.dynamic_threshold.thresholds[0abcdefgh.val",
        "policy.dynamic_threshold.thresholds[0abcdefghi.val",
        "policy.static_ratio.trigger",
        "policy.dynamic_threshold_trigger",
        "dynamic_threshold.trigger",
        "trigger",
        "",
        " policy.dynamic_threshold.trigger",
        "policy.dynamic_threshold.[0].val",
    };
    /* Values that keep the configuration valid whatever is set. */
    size_t v0 = 1024;
    for (unsigned i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
        union {
            size_t z;
            unsigned u;
            float f;
        } val;
        const char *n = NAMES[i];
        if (strstr(n, "thresholds"))
            val.z = strstr(n, "[1]") || strstr(n, "[ 1]") || strstr(n, "[+1]") || strstr(n, "[01]")
                        ? 2048
                        : v0;
        else if (strstr(n, "check_cnt"))
            val.u = 20;
        else
            val.f = 0.1f;
        printf("ctl_set \"%s\" rc=%d\n", n, memtier_ctl_set(b, n, &val));
    }
    /* thresholds[0] may have had val, min and max all set to 1024; [1] to 2048: still valid. */
    struct memtier_memory *m = memtier_builder_construct_memtier_memory(b);
    printf("construct after names ok=%d\n", m != NULL);
    memtier_delete_memtier_memory(m);
    memtier_builder_delete(b);

    /* Static builders have no property. */
    b = memtier_builder_new(STATIC);
    memtier_builder_add_tier(b, MEMKIND_DEFAULT, 1);
    memtier_builder_add_tier(b, MEMKIND_REGULAR, 1);
    float f = 0.1f;
    printf("static ctl_set trigger rc=%d\n",
           memtier_ctl_set(b, "policy.dynamic_threshold.trigger", &f));
    memtier_builder_delete(b);

    /* A two-tier builder has one threshold. */
    b = memtier_builder_new(DYNAMIC);
    size_t v = 100;
    printf("no tier: thresholds[0].val rc=%d\n",
           memtier_ctl_set(b, "policy.dynamic_threshold.thresholds[0].val", &v));
    memtier_builder_add_tier(b, MEMKIND_DEFAULT, 1);
    printf("1 tier: thresholds[0].val rc=%d\n",
           memtier_ctl_set(b, "policy.dynamic_threshold.thresholds[0].val", &v));
    memtier_builder_add_tier(b, MEMKIND_REGULAR, 1);
    printf("2 tiers: thresholds[0].val rc=%d [1] rc=%d\n",
           memtier_ctl_set(b, "policy.dynamic_threshold.thresholds[0].val", &v),
           memtier_ctl_set(b, "policy.dynamic_threshold.thresholds[1].val", &v));
    memtier_builder_delete(b);
}

/* Values are checked when the memory is constructed. */
static void ctl_values(void)
{
    struct {
        const char *what;
        const char *name;
        int type; /* 0 size_t, 1 unsigned, 2 float */
        double value;
    } CASES[] = {
        {"defaults", NULL, 0, 0},
        {"val below min", "thresholds[0].val", 0, 511},
        {"val = min", "thresholds[0].val", 0, 512},
        {"val = max", "thresholds[0].val", 0, 1535},
        {"val above max", "thresholds[0].val", 0, 1536},
        {"min above val", "thresholds[0].min", 0, 1025},
        {"min = 0", "thresholds[0].min", 0, 0},
        {"max below val", "thresholds[0].max", 0, 1023},
        {"max huge", "thresholds[0].max", 0, 1e18},
        {"max overlaps next min", "thresholds[0].max", 0, 1537},
        {"max = next min", "thresholds[0].max", 0, 1536},
        {"next min below max", "thresholds[1].min", 0, 1534},
        {"next val huge", "thresholds[1].val", 0, 1e12},
        {"degree -0.5", "degree", 2, -0.5},
        {"degree 0", "degree", 2, 0},
        {"degree 5", "degree", 2, 5},
        {"trigger -0.01", "trigger", 2, -0.01},
        {"trigger 0", "trigger", 2, 0},
        {"trigger 100", "trigger", 2, 100},
        {"check_cnt 0", "check_cnt", 1, 0},
        {"check_cnt max", "check_cnt", 1, 4294967295.0},
    };
    for (unsigned i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        struct memtier_builder *b = memtier_builder_new(DYNAMIC);
        memtier_builder_add_tier(b, MEMKIND_DEFAULT, 1);
        memtier_builder_add_tier(b, MEMKIND_REGULAR, 1);
        memtier_builder_add_tier(b, MEMKIND_INTERLEAVE, 1);
        int rc = 0;
        if (CASES[i].name) {
            char name[128];
            snprintf(name, sizeof name, "policy.dynamic_threshold.%s", CASES[i].name);
            size_t z = (size_t)CASES[i].value;
            unsigned u = (unsigned)CASES[i].value;
            float f = (float)CASES[i].value;
            const void *p = CASES[i].type == 0 ? (const void *)&z
                            : CASES[i].type == 1 ? (const void *)&u
                                                 : (const void *)&f;
            rc = memtier_ctl_set(b, name, p);
        }
        struct memtier_memory *m = memtier_builder_construct_memtier_memory(b);
        printf("values %s: ctl rc=%d construct ok=%d\n", CASES[i].what, rc, m != NULL);
        if (m) {
            void *p = memtier_malloc(m, 700);
            printf("  700 -> %s\n", kname(memkind_detect_kind(p)));
            memtier_free(p);
            memtier_delete_memtier_memory(m);
        }
        memtier_builder_delete(b);
    }
}

static void pmem(const char *dir)
{
    memkind_t k = NULL;
    int rc = memkind_create_pmem(dir, 0, &k);
    printf("pmem create rc=%d\n", rc);
    if (rc)
        return;
    PMEM_KIND = k;
    printf("pmem allocated before=%zu\n", asz(k));
    struct memtier_builder *b = memtier_builder_new(STATIC);
    memtier_builder_add_tier(b, MEMKIND_DEFAULT, 1);
    printf("pmem add_tier rc=%d\n", memtier_builder_add_tier(b, k, 1));
    struct memtier_memory *m = memtier_builder_construct_memtier_memory(b);
    memtier_builder_delete(b);
    void *ptrs[2000];
    int in_pmem = 0;
    for (int i = 0; i < 2000; i++) {
        ptrs[i] = memtier_malloc(m, 300);
        in_pmem += memkind_detect_kind(ptrs[i]) == k;
    }
    printf("pmem 1:1: in PMEM=%d DEFAULT=%zu PMEM=%zu\n", in_pmem, asz(MEMKIND_DEFAULT), asz(k));
    for (int i = 0; i < 1000; i++)
        memtier_free(ptrs[i]);
    printf("pmem half freed: DEFAULT=%zu PMEM=%zu\n", asz(MEMKIND_DEFAULT), asz(k));
    /* Destroying the kind with blocks still counted: a new kind in its slot starts at 0. */
    for (int i = 1000; i < 2000; i++)
        if (memkind_detect_kind(ptrs[i]) == MEMKIND_DEFAULT)
            memtier_free(ptrs[i]);
    memtier_delete_memtier_memory(m);
    printf("pmem destroy rc=%d\n", memkind_destroy_kind(k));
    memkind_t k2 = NULL;
    rc = memkind_create_pmem(dir, 0, &k2);
    PMEM_KIND = k2;
    printf("pmem recreate rc=%d allocated=%zu DEFAULT=%zu\n", rc, rc ? 0 : asz(k2),
           asz(MEMKIND_DEFAULT));
    if (!rc) {
        void *p = memtier_kind_malloc(k2, 5000);
        printf("pmem kind_malloc kind=%s allocated=%zu\n", kname(memkind_detect_kind(p)), asz(k2));
        memtier_free(p);
        printf("pmem freed allocated=%zu\n", asz(k2));
        memkind_destroy_kind(k2);
    }
    PMEM_KIND = NULL;
}

enum { THREADS = 4, PER_THREAD = 5000 };
static struct memtier_memory *TM;
static void *TPTRS[THREADS][PER_THREAD];

static void *worker(void *arg)
{
    void **mine = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        mine[i] = memtier_malloc(TM, 64);
        if (i % 4 == 3) {
            memtier_free(mine[i - 1]);
            mine[i - 1] = memtier_calloc(TM, 1, 64);
        }
    }
    return NULL;
}

static void threads(memtier_policy_t pol)
{
    TM = two_tiers(pol, 1, 1);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, TPTRS[i]);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    size_t d = asz(MEMKIND_DEFAULT), r = asz(MEMKIND_REGULAR);
    printf("threads policy %d: total=%zu (expected %d) DEFAULT used=%d\n", pol, d + r,
           THREADS * PER_THREAD * 64, d > 0);
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < PER_THREAD; j++)
            memtier_free(TPTRS[i][j]);
    sizes("threads after free");
    memtier_delete_memtier_memory(TM);
}

int main(int argc, char **argv)
{
    setup_stdout();
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    builders();
    static_ratio();
    api();
    kind_api();
    dynamic_threshold();
    ratio_zero();
    ctl_names();
    ctl_values();
    pmem(dir);
    threads(STATIC);
    threads(DYNAMIC);
    sizes("end");
    return 0;
}
