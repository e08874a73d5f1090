/*
 * The fine print of the C contract (issue 12), one check a line, written
 * from include/moonshot_provider.h alone. tests/tests/c_contract.rs builds
 * it, scripts the simulator and reads what it prints.
 *
 * Build: gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -I include \
 *            tests/c/contract.c -ldl -lpthread
 * Usage: contract contract <plugin.so> <base_url>
 *        contract unload   <plugin.so> <base_url>
 *
 * `contract` prints (stdout, one item a line):
 *   queued-cancel <ms> <status>     cancel() of a queued request: ms until its on_done
 *   queued-release <ms> <status>    release() of a queued request: the same
 *   result-null-out <status>        request_result(req, NULL)
 *   struct-size-zero <status> <req-is-null 0|1> <error json>
 *   probe-handle-seen <0|1>         a callback read the handle complete() stored
 *   probe-wait <status> <ms>        wait(req, 10 s) from inside on_chunk
 *   probe-pending <status>          request_result from inside on_chunk
 *   probe-done <status> <json>      on_done of the probed stream
 *   probe-result-in-done <status> <same 0|1>  request_result inside on_done
 *   trace-result <status> <json>    a completion whose only id is X-Msh-Trace-Id
 *   upstream-error <status> <json>  a 429 naming the account
 *   ok
 * `unload` loads, works, destroys and dlclose()s the library twice in one
 * process, then prints "unloaded 2" and returns from main (the process exit
 * runs every destructor with the library closed).
 * Any unexpected condition: a message on stderr and exit status 1.
 */

#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moonshot_provider.h"

_Static_assert(sizeof(void *) == sizeof(MoonshotGetApi),
               "function and object pointers differ in size");

#define WAIT_MS 10000u

static const MoonshotApi *api;

static void fail(const char *fmt, ...) {
    va_list args;
    fflush(stdout);
    fputs("contract: ", stderr);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
    exit(1);
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static char *copy_text(const char *s, size_t len) {
    char *out = malloc(len + 1);
    if (out == NULL) {
        fail("out of memory");
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

/* ------------------------------------------------------------------ */
/* One request as the host sees it: the handle complete() stored, and what
 * the callbacks saw. The handle field is written by complete() itself
 * (out_request points at it), and read by the callbacks. */

typedef struct Req {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    MoonshotRequest *handle;
    int chunks;
    int done;
    MoonshotStatus status;
    char *result;
    double done_at;
    /* The probe's observations, made inside the callbacks. */
    int probe;
    int handle_seen;
    MoonshotStatus wait_status;
    double wait_ms;
    MoonshotStatus pending_status;
    MoonshotStatus result_in_done;
    int result_in_done_same;
} Req;

static void req_init(Req *r) {
    memset(r, 0, sizeof *r);
    if (pthread_mutex_init(&r->mu, NULL) != 0 || pthread_cond_init(&r->cv, NULL) != 0) {
        fail("pthread init failed");
    }
    r->status = -1;
    r->wait_status = -1;
    r->pending_status = -1;
    r->result_in_done = -1;
}

static void req_free(Req *r) {
    free(r->result);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

static MoonshotFlow on_chunk(void *user_data, const char *json, size_t len) {
    Req *r = user_data;
    (void)json;
    (void)len;
    if (r->probe && r->chunks == 0) {
        /* The handle complete() stored is already there, and usable. */
        char *out = NULL;
        double start;
        r->handle_seen = r->handle != NULL;
        if (r->handle != NULL) {
            start = now_ms();
            r->wait_status = api->wait(r->handle, WAIT_MS);
            r->wait_ms = now_ms() - start;
            r->pending_status = api->request_result(r->handle, &out);
            api->free_string(out);
        }
    }
    pthread_mutex_lock(&r->mu);
    r->chunks++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return MOONSHOT_CONTINUE;
}

static void on_done(void *user_data, MoonshotStatus status, const char *json, size_t len) {
    Req *r = user_data;
    double at = now_ms();
    if (r->probe && r->handle != NULL) {
        char *out = NULL;
        r->result_in_done = api->request_result(r->handle, &out);
        r->result_in_done_same = out != NULL && strlen(out) == len && memcmp(out, json, len) == 0;
        api->free_string(out);
    }
    pthread_mutex_lock(&r->mu);
    r->done = 1;
    r->done_at = at;
    r->status = status;
    r->result = copy_text(json, len);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static MoonshotCallbacks callbacks(void) {
    MoonshotCallbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.struct_size = sizeof cb;
    cb.on_chunk = on_chunk;
    cb.on_done = on_done;
    return cb;
}

/* Waits (bounded) until the request has a part (want_done 0) or ended. */
static void await(Req *r, int want_done, const char *what) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&r->mu);
    while (want_done ? !r->done : (r->chunks == 0 && !r->done)) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&r->mu);
            fail("%s: nothing within %u ms", what, WAIT_MS);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

static void start(MoonshotInstance *inst, const char *json, Req *r, const char *what) {
    MoonshotCallbacks cb = callbacks();
    char *err = NULL;
    MoonshotStatus st = api->complete(inst, json, &cb, r, &r->handle, &err);
    if (st != MOONSHOT_OK || r->handle == NULL) {
        fail("%s: complete returned %d: %s", what, (int)st, err ? err : "(no error)");
    }
}

static const MoonshotApi *load(const char *path, void **lib_out) {
    void *sym;
    MoonshotGetApi get_api;
    const MoonshotApi *table;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fail("dlopen(%s): %s", path, dlerror());
    }
    sym = dlsym(lib, "moonshot_get_api");
    if (sym == NULL) {
        fail("dlsym: %s", dlerror());
    }
    memcpy(&get_api, &sym, sizeof get_api);
    table = get_api(MOONSHOT_ABI_MAJOR, MOONSHOT_ABI_MINOR);
    if (table == NULL) {
        fail("moonshot_get_api returned NULL");
    }
    *lib_out = lib;
    return table;
}

static MoonshotInstance *create(const char *base_url, const char *extra) {
    char config[1024];
    MoonshotInstance *inst = NULL;
    char *err = NULL;
    int n = snprintf(config, sizeof config,
                     "{\"apiKey\":\"sk-c-contract-test\",\"base_url\":\"%s\","
                     "\"today\":\"2026-11-25\"%s}",
                     base_url, extra);
    if (n < 0 || (size_t)n >= sizeof config) {
        fail("config too long");
    }
    if (api->create(config, &inst, &err) != MOONSHOT_OK || inst == NULL) {
        fail("create failed: %s", err ? err : "(no error)");
    }
    return inst;
}

static const char STREAM[] = "{\"model\":\"kimi-k2.6\",\"stream\":true,"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
static const char PLAIN[] = "{\"model\":\"kimi-k2.6\",\"stream\":false,"
                            "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";

/* Fix 1: one pool thread, held by a silent stream; two requests queue
 * behind it. Cancelling one and releasing the other must each bring their
 * on_done at once, not when the thread frees up. */
static void queued_cancel_and_release(MoonshotInstance *inst) {
    Req held, cancelled, released;
    double t0;
    req_init(&held);
    req_init(&cancelled);
    req_init(&released);
    start(inst, STREAM, &held, "held");
    await(&held, 0, "held");
    start(inst, STREAM, &cancelled, "queued-cancel");
    start(inst, STREAM, &released, "queued-release");

    t0 = now_ms();
    if (api->cancel(cancelled.handle) != MOONSHOT_OK) {
        fail("cancel of a queued request failed");
    }
    await(&cancelled, 1, "queued-cancel");
    printf("queued-cancel %.1f %d\n", cancelled.done_at - t0, (int)cancelled.status);

    t0 = now_ms();
    api->release(released.handle);
    await(&released, 1, "queued-release");
    printf("queued-release %.1f %d\n", released.done_at - t0, (int)released.status);

    /* Fix 2, on a finished request. */
    printf("result-null-out %d\n", (int)api->request_result(cancelled.handle, NULL));

    api->cancel(held.handle);
    if (api->wait(held.handle, WAIT_MS) != MOONSHOT_ERR_CANCELLED) {
        fail("the held stream did not end cancelled");
    }
    api->release(held.handle);
    api->release(cancelled.handle);
    req_free(&held);
    req_free(&cancelled);
    req_free(&released);
}

/* Fix 3: a host that forgot struct_size. */
static void struct_size_zero(MoonshotInstance *inst) {
    MoonshotCallbacks cb = callbacks();
    MoonshotRequest *req = (MoonshotRequest *)&req; /* must be overwritten */
    char *err = NULL;
    MoonshotStatus st;
    cb.struct_size = 0;
    st = api->complete(inst, STREAM, &cb, NULL, &req, &err);
    printf("struct-size-zero %d %d %s\n", (int)st, req == NULL, err ? err : "null");
    api->free_string(err);
    if (st == MOONSHOT_OK) {
        api->wait(req, WAIT_MS);
        api->release(req);
    }
}

/* Fixes 4, 5, 6 and 7: callbacks that use the handle the host stored. */
static void probe(MoonshotInstance *inst) {
    Req r;
    req_init(&r);
    r.probe = 1;
    start(inst, STREAM, &r, "probe");
    if (api->wait(r.handle, WAIT_MS) == MOONSHOT_PENDING) {
        fail("probe: no end within %u ms", WAIT_MS);
    }
    printf("probe-handle-seen %d\n", r.handle_seen);
    printf("probe-wait %d %.1f\n", (int)r.wait_status, r.wait_ms);
    printf("probe-pending %d\n", (int)r.pending_status);
    printf("probe-done %d %s\n", (int)r.status, r.result ? r.result : "null");
    printf("probe-result-in-done %d %d\n", (int)r.result_in_done, r.result_in_done_same);
    api->release(r.handle);
    req_free(&r);
}

/* Callback-less requests, read with request_result. */
static void plain(MoonshotInstance *inst, const char *json, const char *label) {
    MoonshotRequest *req = NULL;
    char *out = NULL;
    char *err = NULL;
    MoonshotStatus st = api->complete(inst, json, NULL, NULL, &req, &err);
    if (st != MOONSHOT_OK) {
        fail("%s: complete returned %d: %s", label, (int)st, err ? err : "(no error)");
    }
    if (api->wait(req, WAIT_MS) == MOONSHOT_PENDING) {
        fail("%s: no end within %u ms", label, WAIT_MS);
    }
    st = api->request_result(req, &out);
    printf("%s %d %s\n", label, (int)st, out ? out : "null");
    api->free_string(out);
    api->release(req);
}

static int contract(const char *path, const char *base_url) {
    void *lib;
    MoonshotInstance *inst;
    api = load(path, &lib);
    inst = create(base_url, ",\"max_concurrency\":1,\"max_queue\":4,\"retries\":{\"max\":0}");
    queued_cancel_and_release(inst);
    struct_size_zero(inst);
    probe(inst);
    plain(inst, PLAIN, "trace-result");
    plain(inst, STREAM, "upstream-error");
    api->destroy(inst);
    printf("ok\n");
    return 0;
}

/* Unloading: twice over, load, do a completion, destroy, dlclose. */
static int unload(const char *path, const char *base_url) {
    int round;
    for (round = 0; round < 2; round++) {
        void *lib;
        MoonshotInstance *inst;
        Req r;
        api = load(path, &lib);
        inst = create(base_url, "");
        req_init(&r);
        start(inst, STREAM, &r, "unload");
        if (api->wait(r.handle, WAIT_MS) != MOONSHOT_OK) {
            fail("unload round %d: the completion did not succeed", round);
        }
        api->release(r.handle);
        req_free(&r);
        api->destroy(inst);
        if (dlclose(lib) != 0) {
            fail("dlclose: %s", dlerror());
        }
        api = NULL;
    }
    printf("unloaded 2\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s contract|unload <plugin.so> <base_url>\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "contract") == 0) {
        return contract(argv[2], argv[3]);
    }
    if (strcmp(argv[1], "unload") == 0) {
        return unload(argv[2], argv[3]);
    }
    fail("unknown mode %s", argv[1]);
    return 2;
}
