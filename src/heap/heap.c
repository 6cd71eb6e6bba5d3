/*
 * heap.c - picks a profile's heap algorithm and keeps the registry of live
 * heaps (see heap.h).
 *
 * Owns: the registry (a list of every heap created through heap_create, under
 * one lock), the bad-pointer hook, and the operations that are the same for
 * every algorithm (heap_common_*: they touch only the common head, or ask
 * the algorithm through ops->busy_item and ops->consistent), and the record
 * pool the large items of ce5 and ce6 come from.
 *
 * Invariant: a heap is in the registry from heap_create's return until
 * heap_destroy starts; handles are looked up only there, so a destroyed or
 * invented handle is refused instead of followed.
 */
#include "heap/heap.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "meta.h"
#include "os.h"
#include "slot.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct heap *registry_head;
static _Atomic(heap_bad_pointer_fn) bad_pointer_hook;
static atomic_ulong generation = 1;

const struct heap_ops *heap_ops_for(enum heap_kind kind)
{
    switch (kind) {
    case HEAP_KIND_CE5:
        return &heap_ce5_ops;
    case HEAP_KIND_CE3:
        return &heap_ce3_ops;
    case HEAP_KIND_CE6:
        return &heap_ce6_ops;
    default:
        return &heap_ce5_ops;
    }
}

struct heap *heap_create(const struct heap_ops *ops, struct slot *s, DWORD flags, size_t initial,
                         size_t max, DWORD *err)
{
    struct heap *h = ops->create(s, flags, initial, max, err);
    if (h == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&registry_lock);
    h->reg_prev = NULL;
    h->reg_next = registry_head;
    if (registry_head != NULL) {
        registry_head->reg_prev = h;
    }
    registry_head = h;
    pthread_mutex_unlock(&registry_lock);
    return h;
}

bool heap_destroy(struct heap *h, DWORD *err)
{
    pthread_mutex_lock(&registry_lock);
    if (h->reg_prev != NULL) {
        h->reg_prev->reg_next = h->reg_next;
    } else if (registry_head == h) {
        registry_head = h->reg_next;
    }
    if (h->reg_next != NULL) {
        h->reg_next->reg_prev = h->reg_prev;
    }
    atomic_fetch_add(&generation, 1);
    pthread_mutex_unlock(&registry_lock);
    return h->ops->destroy(h, err);
}

unsigned long heap_generation(void)
{
    return atomic_load_explicit(&generation, memory_order_acquire);
}

void heap_destroy_all_on(struct slot *s)
{
    for (;;) {
        pthread_mutex_lock(&registry_lock);
        struct heap *h = registry_head;
        while (h != NULL && h->slot != s) {
            h = h->reg_next;
        }
        pthread_mutex_unlock(&registry_lock);
        if (h == NULL) {
            return;
        }
        DWORD ignored;
        heap_destroy(h, &ignored);
    }
}

struct heap *heap_lookup(const void *handle)
{
    if (handle == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&registry_lock);
    struct heap *h = registry_head;
    while (h != NULL && h->ops->handle(h) != handle) {
        h = h->reg_next;
    }
    pthread_mutex_unlock(&registry_lock);
    return h;
}

bool heap_item_of_another(const struct heap *h, const void *p)
{
    bool found = false;
    pthread_mutex_lock(&registry_lock);
    for (struct heap *o = registry_head; o != NULL && !found; o = o->reg_next) {
        found = o != h && o->ops->owns(o, p);
    }
    pthread_mutex_unlock(&registry_lock);
    return found;
}

void heap_lock_all(void)
{
    pthread_mutex_lock(&registry_lock);
    for (struct heap *h = registry_head; h != NULL; h = h->reg_next) {
        h->ops->lock(h);
    }
}

void heap_unlock_all(void)
{
    struct heap *last = registry_head;
    while (last != NULL && last->reg_next != NULL) {
        last = last->reg_next;
    }
    for (struct heap *h = last; h != NULL; h = h->reg_prev) {
        h->ops->unlock(h);
    }
    pthread_mutex_unlock(&registry_lock);
}

void heap_set_bad_pointer_hook(heap_bad_pointer_fn fn)
{
    atomic_store(&bad_pointer_hook, fn);
}

void heap_report_bad_pointer(const char *op, const void *handle, const void *p,
                             enum heap_bad_kind why)
{
    heap_bad_pointer_fn fn = atomic_load(&bad_pointer_hook);
    if (fn != NULL) {
        fn(op, handle, p, why);
    }
}

void heap_common_stats(struct heap *h, struct heap_stats *out)
{
    lock_enter(&h->lock);
    *out = h->st;
    lock_leave(&h->lock);
}

void *heap_common_handle(struct heap *h)
{
    return (void *)h->handle;
}

void heap_common_lock(struct heap *h)
{
    lock_take(&h->lock);
}

void heap_common_unlock(struct heap *h)
{
    lock_give(&h->lock);
}

void heap_publish_free_figures_locked(struct heap *c)
{
    struct heap_free_figures f = {0};
    c->ops->free_figures(c, &f);
    ram_publish_free_figures(c->pub, f.free_items, f.largest_free_bytes, f.empty_pages, f.work);
}

void heap_common_publish(struct heap *h, struct ram *r)
{
    lock_enter(&h->lock);
    h->pub = r;
    h->tl = r->tl;
    heap_publish(h);
    if (h->tl != NULL) {
        heap_publish_free_figures_locked(h);
    }
    lock_leave(&h->lock);
}

void heap_refresh_free_figures(struct heap *h)
{
    lock_enter(&h->lock);
    if (h->tl != NULL) {
        heap_publish_free_figures_locked(h);
    }
    lock_leave(&h->lock);
}

bool heap_common_validate(struct heap *h, DWORD flags, const void *p)
{
    if (flags & ~(DWORD)HEAP_NO_SERIALIZE) {
        return false;
    }
    lock_enter(&h->lock);
    bool ok = p != NULL ? h->ops->busy_item(h, p) : h->ops->consistent(h);
    lock_leave(&h->lock);
    return ok;
}

bool heap_common_owns(struct heap *h, const void *p)
{
    lock_enter(&h->lock);
    bool ok = h->ops->busy_item(h, p);
    lock_leave(&h->lock);
    return ok;
}

struct heap_pool_chunk {
    struct heap_pool_chunk *next;
    size_t bytes;
};

/* Pushes rec on the free list: the link goes in its first word (memcpy: the
 * record's own type is the caller's). */
static void pool_push(struct heap_pool *p, void *rec)
{
    memcpy(rec, &p->spare, sizeof p->spare);
    p->spare = rec;
}

/* The next chunk's bytes (see heap.h): twice the last, from a page up to
 * the cap, and never too small for one record after the chunk's header. */
static size_t pool_chunk_bytes(const struct heap_pool *p, size_t size, size_t align)
{
    size_t page = os_page_size();
    size_t bytes = p->chunks == NULL ? page : 2 * p->chunks->bytes;
    bytes = bytes < HEAP_POOL_CHUNK_MAX ? bytes : HEAP_POOL_CHUNK_MAX;
    size_t one = (sizeof(struct heap_pool_chunk) + align - 1 + size + page - 1) & ~(page - 1);
    return bytes > one ? bytes : one;
}

void *heap_pool_take(struct heap_pool *p, size_t size, size_t align)
{
    if (p->spare == NULL) {
        size_t bytes = pool_chunk_bytes(p, size, align);
        struct heap_pool_chunk *c = meta_alloc(bytes);
        if (c == NULL) {
            return NULL;
        }
        c->bytes = bytes;
        c->next = p->chunks;
        p->chunks = c;
        uintptr_t end = (uintptr_t)c + bytes;
        uintptr_t rec = ((uintptr_t)(c + 1) + align - 1) & ~(uintptr_t)(align - 1);
        for (; rec + size <= end; rec += size) {
            pool_push(p, (void *)rec);
        }
    }
    void *rec = p->spare;
    memcpy(&p->spare, rec, sizeof p->spare);
    memset(rec, 0, size);
    return rec;
}

void heap_pool_give(struct heap_pool *p, void *rec)
{
    pool_push(p, rec);
}

void heap_pool_destroy(struct heap_pool *p)
{
    for (struct heap_pool_chunk *c = p->chunks, *next; c != NULL; c = next) {
        next = c->next;
        meta_free(c, c->bytes);
    }
    p->chunks = NULL;
    p->spare = NULL;
}

/* A commit's result, its bytes counted committed when it succeeded. */
static DWORD counted_commit(struct heap *h, size_t bytes, DWORD err)
{
    if (err == 0) {
        heap_stats_commit(h, bytes);
    }
    return err;
}

DWORD heap_slot_commit(struct heap *h, uintptr_t addr, size_t bytes)
{
    void *out;
    DWORD err = slot_virtual_alloc(h->slot, (void *)addr, bytes, MEM_COMMIT, PAGE_READWRITE, &out);
    return counted_commit(h, bytes, err);
}

DWORD heap_slot_commit_growth(struct heap *h, uintptr_t addr, size_t bytes)
{
    return counted_commit(h, bytes, slot_commit_growth(h->slot, (void *)addr, bytes));
}

void heap_slot_decommit(struct heap *h, uintptr_t addr, size_t bytes)
{
    if (bytes != 0 && slot_virtual_free(h->slot, (void *)addr, bytes, MEM_DECOMMIT) == 0) {
        heap_stats_decommit(h, bytes);
    }
}

DWORD heap_slot_take_pages(struct heap *h, uintptr_t dst, uintptr_t src, size_t bytes)
{
    DWORD err = slot_move_committed(h->slot, (void *)dst, (void *)src, bytes);
    if (err == 0) {
        heap_stats_commit(h, bytes);
        return 0;
    }
    if (err != ERROR_NOT_SUPPORTED) {
        return err;
    }
    err = heap_slot_commit(h, dst, bytes);
    if (err == 0) {
        memcpy((void *)dst, (const void *)src, bytes);
    }
    return err;
}
