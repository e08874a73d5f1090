/*
 * A minimal C host of libmoonshot_provider: loads the plugin with dlopen,
 * drives every entry of the function table once, and prints one line per
 * observation for tests/tests/c_host.rs to check.
 *
 * Build: gcc -std=c11 -Wall -Wextra -Wpedantic -Werror -I include \
 *            tests/c/host.c -ldl -lpthread
 * Usage: host <path-to-libmoonshot_provider.so> <base_url>
 *
 * Output (stdout, one item a line):
 *   abi <major>.<minor> <plugin_name> <plugin_version>
 *   create-null <status> <error json>
 *   default <json string>
 *   models <count of "puterId">
 *   list contains kimi-k2.6: yes|no
 *   costs <count of "usageType">
 *   live-drift <true|false>      (ABI 1.1 live_models: the "drift" flag)
 *   balance <available_balance_ucents>  (ABI 1.1 balance)
 *   chunk <part json>            (the streaming completion, in order)
 *   done <status> <result json>  (its on_done)
 *   result <status> <result json>  (the callback-less completion)
 *   unknown-model <status> <error json>
 *   cancel-chunk <part json>     (the cancelled stream's parts)
 *   cancel-done <status> <json>  (its on_done)
 *   cancelled <status>
 *   inflight-chunk <part json>   (two streams still running at destroy)
 *   inflight-done <status> <json>  (their on_done, from inside destroy)
 *   destroyed-inflight <count>   (destroy returned; both had ended)
 *   ok
 * Any unexpected condition: a message on stderr and exit status 1.
 *
 * No leaks: every string is freed with free_string, every request released
 * (the in-flight ones after destroy, which the header allows), the instance
 * destroyed. tests/tests/c_valgrind.rs runs this program under valgrind. The library is never dlclose'd (the header says
 * hosts should never unload it).
 */

#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moonshot_provider.h"

/* The object-pointer -> function-pointer conversion below copies bytes. */
_Static_assert(sizeof(void *) == sizeof(MoonshotGetApi),
               "function and object pointers differ in size");

#define WAIT_MS 10000u

static void fail(const char *fmt, ...) {
    va_list args;
    fflush(stdout);
    fputs("host: ", stderr);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
    exit(1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fail("out of memory");
    }
    return p;
}

static char *copy_bytes(const char *s, size_t len) {
    char *out = xmalloc(len + 1);
    memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

static size_t count_occurrences(const char *haystack, const char *needle) {
    size_t n = 0;
    size_t step = strlen(needle);
    const char *p = haystack;
    while ((p = strstr(p, needle)) != NULL) {
        n++;
        p += step;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* What one streaming request shares between the pool thread and main. */

typedef struct Stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const char *label; /* prefix of the chunk lines; on_done prints <label>-done */
    const char *done_label;
    size_t chunks;     /* parts received */
    char **lines;      /* a copy of every part */
    size_t cap;
    int done;          /* on_done ran */
    int done_calls;    /* how many times (must be 1) */
    int chunks_after_done;
    int bad_length;    /* a len argument disagreed with strlen */
    MoonshotStatus status;
    char *result;      /* copy of on_done's JSON */
} Stream;

static void stream_init(Stream *s, const char *label, const char *done_label) {
    memset(s, 0, sizeof *s);
    if (pthread_mutex_init(&s->mu, NULL) != 0 || pthread_cond_init(&s->cv, NULL) != 0) {
        fail("pthread init failed");
    }
    s->label = label;
    s->done_label = done_label;
    s->status = -1;
}

static void stream_free(Stream *s) {
    size_t i;
    for (i = 0; i < s->chunks; i++) {
        free(s->lines[i]);
    }
    free(s->lines);
    free(s->result);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

static MoonshotFlow on_chunk(void *user_data, const char *chunk_json, size_t len) {
    Stream *s = user_data;
    char *copy;
    pthread_mutex_lock(&s->mu);
    if (chunk_json == NULL || strlen(chunk_json) != len) {
        s->bad_length = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return MOONSHOT_CONTINUE;
    }
    if (s->done) {
        s->chunks_after_done = 1;
    }
    copy = copy_bytes(chunk_json, len);
    if (s->chunks == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **grown = realloc(s->lines, cap * sizeof *grown);
        if (grown == NULL) {
            fail("out of memory");
        }
        s->lines = grown;
        s->cap = cap;
    }
    s->lines[s->chunks++] = copy;
    printf("%s %s\n", s->label, copy);
    fflush(stdout);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return MOONSHOT_CONTINUE;
}

static void on_done(void *user_data, MoonshotStatus status, const char *result_json, size_t len) {
    Stream *s = user_data;
    pthread_mutex_lock(&s->mu);
    s->done_calls++;
    if (result_json == NULL || strlen(result_json) != len) {
        s->bad_length = 1;
    } else {
        free(s->result);
        s->result = copy_bytes(result_json, len);
        printf("%s %d %s\n", s->done_label, (int)status, s->result);
        fflush(stdout);
    }
    s->status = status;
    s->done = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits (up to WAIT_MS) until the stream has at least one part or ended. */
/* The callbacks every streamed request here uses, with the host's size. */
static MoonshotCallbacks stream_callbacks(void) {
    MoonshotCallbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.struct_size = sizeof cb;
    cb.on_chunk = on_chunk;
    cb.on_done = on_done;
    return cb;
}

static void wait_first_chunk(Stream *s) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&s->mu);
    while (s->chunks == 0 && !s->done) {
        int rc = pthread_cond_timedwait(&s->cv, &s->mu, &deadline);
        if (rc == ETIMEDOUT) {
            pthread_mutex_unlock(&s->mu);
            fail("no chunk arrived within %u ms", WAIT_MS);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

static void check_stream_ended(Stream *s, const char *what, MoonshotStatus expected) {
    pthread_mutex_lock(&s->mu);
    if (!s->done || s->done_calls != 1) {
        fail("%s: on_done ran %d times before wait() returned (expected exactly once)", what,
             s->done_calls);
    }
    if (s->bad_length) {
        fail("%s: a callback's len disagreed with its NUL-terminated text", what);
    }
    if (s->chunks_after_done) {
        fail("%s: on_chunk ran after on_done", what);
    }
    if (s->status != expected) {
        fail("%s: on_done status %d, expected %d", what, (int)s->status, (int)expected);
    }
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------ */

static const MoonshotApi *load_api(const char *path) {
    void *lib;
    void *sym;
    MoonshotGetApi get_api;
    const MoonshotApi *api;

    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fail("dlopen(%s): %s", path, dlerror());
    }
    dlerror();
    sym = dlsym(lib, "moonshot_get_api");
    if (sym == NULL) {
        fail("dlsym(moonshot_get_api): %s", dlerror());
    }
    memcpy(&get_api, &sym, sizeof get_api);

    if (get_api(2, 0) != NULL) {
        fail("moonshot_get_api(2, 0) returned a table; expected NULL for an unknown major");
    }
    if (get_api(0, 0) != NULL) {
        fail("moonshot_get_api(0, 0) returned a table; expected NULL for an unknown major");
    }
    api = get_api(MOONSHOT_ABI_MAJOR, MOONSHOT_ABI_MINOR);
    if (api == NULL) {
        fail("moonshot_get_api(%d, %d) returned NULL", MOONSHOT_ABI_MAJOR, MOONSHOT_ABI_MINOR);
    }
    if (api->struct_size < sizeof(MoonshotApi)) {
        fail("table struct_size %zu is smaller than this host's MoonshotApi (%zu)",
             api->struct_size, sizeof(MoonshotApi));
    }
    if (api->abi_major != MOONSHOT_ABI_MAJOR) {
        fail("table abi_major %" PRIu32 ", expected %d", api->abi_major, MOONSHOT_ABI_MAJOR);
    }
    /* An older minor is fine as long as struct_size covers what we read (above). */
    if (api->plugin_name == NULL || api->plugin_version == NULL || api->create == NULL ||
        api->destroy == NULL || api->models == NULL || api->list == NULL ||
        api->default_model == NULL || api->reported_costs == NULL || api->complete == NULL ||
        api->cancel == NULL || api->wait == NULL || api->request_result == NULL ||
        api->release == NULL || api->free_string == NULL || api->live_models == NULL ||
        api->balance == NULL) {
        fail("the table has a NULL entry");
    }
    printf("abi %" PRIu32 ".%" PRIu32 " %s %s\n", api->abi_major, api->abi_minor,
           api->plugin_name, api->plugin_version);
    return api;
}

/* Calls one of the four JSON queries; returns the string (caller frees). */
static char *query(const MoonshotApi *api,
                   MoonshotStatus (*fn)(const MoonshotInstance *, char **),
                   const MoonshotInstance *inst, const char *what) {
    char *out = NULL;
    MoonshotStatus st = fn(inst, &out);
    if (st != MOONSHOT_OK || out == NULL) {
        api->free_string(out);
        fail("%s returned %d (out %s)", what, (int)st, out ? "set" : "NULL");
    }
    return out;
}

/* Calls one of the two blocking live queries (ABI 1.1); returns the string
 * (caller frees). */
static char *ask(const MoonshotApi *api,
                 MoonshotStatus (*fn)(const MoonshotInstance *, char **, char **),
                 const MoonshotInstance *inst, const char *what) {
    char *out = NULL, *err = NULL;
    MoonshotStatus st = fn(inst, &out, &err);
    if (st != MOONSHOT_OK || out == NULL || err != NULL) {
        fprintf(stderr, "%s: %s\n", what, err ? err : "(no error JSON)");
        api->free_string(out);
        api->free_string(err);
        fail("%s returned %d", what, (int)st);
    }
    return out;
}

static void check_create_null(const MoonshotApi *api) {
    MoonshotInstance *inst = (MoonshotInstance *)&inst; /* must be overwritten */
    char *err = NULL;
    MoonshotStatus st = api->create(NULL, &inst, &err);
    if (st != MOONSHOT_ERR_INVALID_ARGUMENT) {
        fail("create(NULL) returned %d, expected %d", (int)st, MOONSHOT_ERR_INVALID_ARGUMENT);
    }
    if (inst != NULL) {
        fail("create(NULL) left a non-NULL instance");
    }
    if (err == NULL) {
        fail("create(NULL) gave no error JSON");
    }
    printf("create-null %d %s\n", (int)st, err);
    api->free_string(err);
}

static MoonshotInstance *create_instance(const MoonshotApi *api, const char *base_url) {
    static const char prefix[] = "{\"apiKey\":\"sk-c-host-test\",\"base_url\":\"";
    static const char suffix[] = "\",\"today\":\"2026-11-25\"}";
    size_t len = strlen(prefix) + strlen(base_url) + strlen(suffix) + 1;
    char *config = xmalloc(len);
    MoonshotInstance *inst = NULL;
    char *err = NULL;
    MoonshotStatus st;

    if (strchr(base_url, '"') != NULL || strchr(base_url, '\\') != NULL) {
        free(config);
        fail("base_url must not need JSON escaping");
    }
    snprintf(config, len, "%s%s%s", prefix, base_url, suffix);
    st = api->create(config, &inst, &err);
    free(config);
    if (st != MOONSHOT_OK || inst == NULL) {
        fprintf(stderr, "host: create failed with %d: %s\n", (int)st, err ? err : "(no error)");
        api->free_string(err);
        exit(1);
    }
    if (err != NULL) {
        fail("create succeeded but stored an error string");
    }
    return inst;
}

static void run_queries(const MoonshotApi *api, const MoonshotInstance *inst) {
    char *s;

    s = query(api, api->default_model, inst, "default_model");
    printf("default %s\n", s);
    api->free_string(s);

    s = query(api, api->models, inst, "models");
    printf("models %zu\n", count_occurrences(s, "\"puterId\""));
    api->free_string(s);

    s = query(api, api->list, inst, "list");
    printf("list contains kimi-k2.6: %s\n", strstr(s, "\"kimi-k2.6\"") ? "yes" : "no");
    api->free_string(s);

    s = query(api, api->reported_costs, inst, "reported_costs");
    printf("costs %zu\n", count_occurrences(s, "\"usageType\""));
    api->free_string(s);

    /* ABI 1.1: present because struct_size covers this host's whole table. */
    s = ask(api, api->live_models, inst, "live_models");
    printf("live-drift %s\n", strstr(s, "\"drift\":false") ? "false" : "true");
    api->free_string(s);

    s = ask(api, api->balance, inst, "balance");
    {
        const char *at = strstr(s, "\"available_balance_ucents\":");
        if (at == NULL) {
            fail("balance has no available_balance_ucents: %s", s);
        }
        printf("balance %lld\n", strtoll(at + strlen("\"available_balance_ucents\":"), NULL, 10));
    }
    api->free_string(s);
}

static MoonshotRequest *start(const MoonshotApi *api, MoonshotInstance *inst, const char *json,
                              const MoonshotCallbacks *cb, void *user_data, const char *what) {
    MoonshotRequest *req = NULL;
    char *err = NULL;
    MoonshotStatus st = api->complete(inst, json, cb, user_data, &req, &err);
    if (st != MOONSHOT_OK || req == NULL) {
        fprintf(stderr, "host: %s: complete returned %d: %s\n", what, (int)st,
                err ? err : "(no error)");
        api->free_string(err);
        exit(1);
    }
    if (err != NULL) {
        fail("%s: complete succeeded but stored an error string", what);
    }
    return req;
}

static void streaming_completion(const MoonshotApi *api, MoonshotInstance *inst) {
    static const char request[] =
        "{\"model\":\"kimi-k2.6\",\"stream\":true,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Hello from C\"}]}";
    MoonshotCallbacks cb;
    Stream s;
    MoonshotRequest *req;
    MoonshotStatus st;
    char *again = NULL;

    stream_init(&s, "chunk", "done");
    cb = stream_callbacks();

    req = start(api, inst, request, &cb, &s, "stream");
    st = api->wait(req, WAIT_MS);
    if (st != MOONSHOT_OK) {
        fail("stream: wait returned %d, expected %d", (int)st, MOONSHOT_OK);
    }
    check_stream_ended(&s, "stream", MOONSHOT_OK);
    if (s.chunks == 0) {
        fail("stream: no chunk arrived");
    }
    /* request_result repeats what on_done received. */
    st = api->request_result(req, &again);
    if (st != MOONSHOT_OK || again == NULL || s.result == NULL || strcmp(again, s.result) != 0) {
        api->free_string(again);
        fail("stream: request_result (%d) differs from what on_done received", (int)st);
    }
    api->free_string(again);
    api->release(req);
    stream_free(&s);
}

static void plain_completion(const MoonshotApi *api, MoonshotInstance *inst) {
    static const char request[] =
        "{\"model\":\"kimi-k2.6\",\"stream\":false,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Answer plainly\"}]}";
    MoonshotRequest *req = start(api, inst, request, NULL, NULL, "plain");
    MoonshotStatus st = api->wait(req, WAIT_MS);
    MoonshotStatus result_status;
    char *json = NULL;
    if (st != MOONSHOT_OK) {
        fail("plain: wait returned %d, expected %d", (int)st, MOONSHOT_OK);
    }
    result_status = api->request_result(req, &json);
    if (json == NULL) {
        fail("plain: request_result returned %d and no JSON", (int)result_status);
    }
    printf("result %d %s\n", (int)result_status, json);
    api->free_string(json);
    api->release(req);
}

/* A streamed tool call: the plugin assembles the call's argument deltas and
 * hands over one {"type":"tool_use"} part with the input parsed. */
static void tool_call_stream(const MoonshotApi *api, MoonshotInstance *inst) {
    static const char request[] =
        "{\"model\":\"kimi-k2.6\",\"stream\":true,"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"description\":\"Weather for a city\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris?\"}]}";
    MoonshotCallbacks cb;
    Stream s;
    MoonshotRequest *req;
    MoonshotStatus st;

    stream_init(&s, "tool-chunk", "tool-done");
    cb = stream_callbacks();

    req = start(api, inst, request, &cb, &s, "tool stream");
    st = api->wait(req, WAIT_MS);
    if (st != MOONSHOT_OK) {
        fail("tool stream: wait returned %d, expected %d", (int)st, MOONSHOT_OK);
    }
    check_stream_ended(&s, "tool stream", MOONSHOT_OK);
    api->release(req);
    stream_free(&s);
}

static void unknown_model(const MoonshotApi *api, MoonshotInstance *inst) {
    static const char request[] =
        "{\"model\":\"kimi-does-not-exist\",\"stream\":true,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Hello?\"}]}";
    MoonshotCallbacks cb;
    Stream s;
    MoonshotRequest *req = (MoonshotRequest *)&req; /* must be overwritten */
    char *err = NULL;
    MoonshotStatus st;

    stream_init(&s, "unknown-chunk", "unknown-done");
    cb = stream_callbacks();
    st = api->complete(inst, request, &cb, &s, &req, &err);
    if (st != MOONSHOT_ERR_UNKNOWN_MODEL) {
        api->free_string(err);
        if (st == MOONSHOT_OK) {
            api->wait(req, WAIT_MS);
            api->release(req);
        }
        fail("unknown model: complete returned %d, expected %d", (int)st,
             MOONSHOT_ERR_UNKNOWN_MODEL);
    }
    if (req != NULL) {
        fail("unknown model: complete failed but left a non-NULL request");
    }
    if (err == NULL) {
        fail("unknown model: no error JSON");
    }
    printf("unknown-model %d %s\n", (int)st, err);
    api->free_string(err);
    /* Nothing started: no callback may run. */
    pthread_mutex_lock(&s.mu);
    if (s.chunks != 0 || s.done_calls != 0) {
        fail("unknown model: a callback ran for a refused request");
    }
    pthread_mutex_unlock(&s.mu);
    stream_free(&s);
}

static void cancelled_stream(const MoonshotApi *api, MoonshotInstance *inst) {
    static const char request[] =
        "{\"model\":\"kimi-k2.6\",\"stream\":true,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Talk slowly\"}]}";
    MoonshotCallbacks cb;
    Stream s;
    MoonshotRequest *req;
    MoonshotStatus st;
    char *json = NULL;

    stream_init(&s, "cancel-chunk", "cancel-done");
    cb = stream_callbacks();

    req = start(api, inst, request, &cb, &s, "cancel");
    wait_first_chunk(&s);
    st = api->cancel(req);
    if (st != MOONSHOT_OK) {
        fail("cancel returned %d", (int)st);
    }
    if (api->cancel(req) != MOONSHOT_OK) {
        fail("a second cancel (idempotent) did not return MOONSHOT_OK");
    }
    st = api->wait(req, WAIT_MS);
    if (st == MOONSHOT_PENDING) {
        fail("cancel: the request had not ended %u ms after cancel()", WAIT_MS);
    }
    check_stream_ended(&s, "cancel", st);
    if (api->request_result(req, &json) != st || json == NULL) {
        api->free_string(json);
        fail("cancel: request_result disagrees with wait");
    }
    api->free_string(json);
    printf("cancelled %d\n", (int)st);
    api->release(req);
    stream_free(&s);
}

/* Two streams that are still running (each sent a part, then went silent)
 * when the instance is destroyed: destroy cancels them, delivers their
 * on_done before it returns, and their handles are released afterwards. */
static void destroy_with_requests_in_flight(const MoonshotApi *api, MoonshotInstance *inst) {
    static const char request[] =
        "{\"model\":\"kimi-k2.6\",\"stream\":true,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"Hold on\"}]}";
    MoonshotCallbacks cb;
    Stream s[2];
    MoonshotRequest *req[2];
    size_t i;

    cb = stream_callbacks();
    for (i = 0; i < 2; i++) {
        stream_init(&s[i], "inflight-chunk", "inflight-done");
        req[i] = start(api, inst, request, &cb, &s[i], "inflight");
        wait_first_chunk(&s[i]);
    }
    api->destroy(inst);
    for (i = 0; i < 2; i++) {
        /* destroy() waited for on_done: no wait() needed. */
        check_stream_ended(&s[i], "inflight", MOONSHOT_ERR_CANCELLED);
        if (api->wait(req[i], 0) != MOONSHOT_ERR_CANCELLED) {
            fail("inflight: the handle does not report the cancellation after destroy");
        }
    }
    printf("destroyed-inflight %d\n", 2);
    for (i = 0; i < 2; i++) {
        api->release(req[i]);
        stream_free(&s[i]);
    }
}

int main(int argc, char **argv) {
    const MoonshotApi *api;
    MoonshotInstance *inst;

    if (argc != 3) {
        fprintf(stderr, "usage: %s <path-to-libmoonshot_provider.so> <base_url>\n",
                argc > 0 ? argv[0] : "host");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    api = load_api(argv[1]);
    check_create_null(api);
    inst = create_instance(api, argv[2]);
    run_queries(api, inst);
    streaming_completion(api, inst);
    plain_completion(api, inst);
    tool_call_stream(api, inst);
    unknown_model(api, inst);
    cancelled_stream(api, inst);
    destroy_with_requests_in_flight(api, inst);
    printf("ok\n");
    fflush(stdout);
    return 0;
}
