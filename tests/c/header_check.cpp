// Compiled (never run) by tests/tests/c_host.rs with
//   g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -I include -c
// It checks that include/moonshot_provider.h is valid C++, that its
// extern "C" guards give the entry C linkage, and that the table and the
// callbacks have the fields and types C hosts rely on.

#include "moonshot_provider.h"

#include <cstddef>
#include <cstdint>
#include <type_traits>

// The entry has the type of the header's typedef.
static_assert(std::is_same<decltype(&moonshot_get_api), MoonshotGetApi>::value,
              "moonshot_get_api must have the MoonshotGetApi type");

// A reference to the entry, so the object file names the symbol: with the
// header's extern "C" guards it is the plain `moonshot_get_api` (the test
// checks the object holds no C++-mangled `_Z16moonshot_get_api...`).
extern "C" const MoonshotApi *header_check_get_api(void) {
    return moonshot_get_api(MOONSHOT_ABI_MAJOR, MOONSHOT_ABI_MINOR);
}

// Status and flow types and the codes.
static_assert(std::is_same<MoonshotStatus, int32_t>::value, "MoonshotStatus is int32_t");
static_assert(std::is_same<MoonshotFlow, int32_t>::value, "MoonshotFlow is int32_t");
static_assert(MOONSHOT_ABI_MAJOR == 1, "this check describes ABI 1");
static_assert(MOONSHOT_ABI_MINOR >= 0, "minor is a version");
static_assert(MOONSHOT_OK == 0 && MOONSHOT_PENDING == 1, "success codes");
static_assert(MOONSHOT_ERR_INVALID_ARGUMENT == 2 && MOONSHOT_ERR_INVALID_REQUEST == 3 &&
                  MOONSHOT_ERR_UNKNOWN_MODEL == 4 && MOONSHOT_ERR_MODEL_RETIRED == 5 &&
                  MOONSHOT_ERR_UPSTREAM == 6 && MOONSHOT_ERR_PROTOCOL == 7 &&
                  MOONSHOT_ERR_TRANSPORT == 8 && MOONSHOT_ERR_TIMEOUT == 9 &&
                  MOONSHOT_ERR_CANCELLED == 10 && MOONSHOT_ERR_BUSY == 11 &&
                  MOONSHOT_ERR_INTERNAL == 12,
              "error codes");
static_assert(MOONSHOT_CONTINUE == 0 && MOONSHOT_STOP == 1, "flow values");

// Both structs are standard layout and start with their size.
static_assert(std::is_standard_layout<MoonshotApi>::value, "MoonshotApi is C layout");
static_assert(std::is_standard_layout<MoonshotCallbacks>::value, "MoonshotCallbacks is C layout");
static_assert(std::is_trivially_copyable<MoonshotCallbacks>::value, "callbacks are plain data");
static_assert(offsetof(MoonshotApi, struct_size) == 0, "struct_size comes first");
static_assert(offsetof(MoonshotCallbacks, struct_size) == 0, "struct_size comes first");
static_assert(std::is_same<decltype(MoonshotApi::struct_size), size_t>::value, "size_t");
static_assert(std::is_same<decltype(MoonshotCallbacks::struct_size), size_t>::value, "size_t");
static_assert(std::is_same<decltype(MoonshotApi::abi_major), uint32_t>::value, "uint32_t");
static_assert(std::is_same<decltype(MoonshotApi::abi_minor), uint32_t>::value, "uint32_t");
static_assert(std::is_same<decltype(MoonshotApi::plugin_name), const char *>::value, "string");
static_assert(std::is_same<decltype(MoonshotApi::plugin_version), const char *>::value, "string");

// The table only grows at its end: version 1.0's fields, in order.
static_assert(offsetof(MoonshotApi, abi_major) < offsetof(MoonshotApi, abi_minor), "order");
static_assert(offsetof(MoonshotApi, abi_minor) < offsetof(MoonshotApi, plugin_name), "order");
static_assert(offsetof(MoonshotApi, plugin_name) < offsetof(MoonshotApi, plugin_version), "order");
static_assert(offsetof(MoonshotApi, plugin_version) < offsetof(MoonshotApi, create), "order");
static_assert(offsetof(MoonshotApi, create) < offsetof(MoonshotApi, destroy), "order");
static_assert(offsetof(MoonshotApi, destroy) < offsetof(MoonshotApi, models), "order");
static_assert(offsetof(MoonshotApi, models) < offsetof(MoonshotApi, list), "order");
static_assert(offsetof(MoonshotApi, list) < offsetof(MoonshotApi, default_model), "order");
static_assert(offsetof(MoonshotApi, default_model) < offsetof(MoonshotApi, reported_costs), "order");
static_assert(offsetof(MoonshotApi, reported_costs) < offsetof(MoonshotApi, complete), "order");
static_assert(offsetof(MoonshotApi, complete) < offsetof(MoonshotApi, cancel), "order");
static_assert(offsetof(MoonshotApi, cancel) < offsetof(MoonshotApi, wait), "order");
static_assert(offsetof(MoonshotApi, wait) < offsetof(MoonshotApi, request_result), "order");
static_assert(offsetof(MoonshotApi, request_result) < offsetof(MoonshotApi, release), "order");
static_assert(offsetof(MoonshotApi, release) < offsetof(MoonshotApi, free_string), "order");
static_assert(offsetof(MoonshotApi, free_string) < offsetof(MoonshotApi, live_models), "order");
static_assert(offsetof(MoonshotApi, live_models) < offsetof(MoonshotApi, balance), "order");
static_assert(offsetof(MoonshotApi, balance) + sizeof(void (*)()) == sizeof(MoonshotApi),
              "balance is the last field of ABI 1.1");
static_assert(offsetof(MoonshotCallbacks, on_chunk) < offsetof(MoonshotCallbacks, on_done), "order");
static_assert(sizeof(MoonshotCallbacks) == sizeof(size_t) + 2 * sizeof(void (*)()),
              "MoonshotCallbacks is struct_size and two function pointers");

// The function signatures C hosts call.
static_assert(std::is_same<decltype(MoonshotApi::create),
                           MoonshotStatus (*)(const char *, MoonshotInstance **, char **)>::value,
              "create");
static_assert(std::is_same<decltype(MoonshotApi::destroy), void (*)(MoonshotInstance *)>::value,
              "destroy");
static_assert(std::is_same<decltype(MoonshotApi::models),
                           MoonshotStatus (*)(const MoonshotInstance *, char **)>::value,
              "models");
static_assert(std::is_same<decltype(MoonshotApi::list), decltype(MoonshotApi::models)>::value,
              "list");
static_assert(std::is_same<decltype(MoonshotApi::default_model),
                           decltype(MoonshotApi::models)>::value,
              "default_model");
static_assert(std::is_same<decltype(MoonshotApi::reported_costs),
                           decltype(MoonshotApi::models)>::value,
              "reported_costs");
static_assert(std::is_same<decltype(MoonshotApi::complete),
                           MoonshotStatus (*)(MoonshotInstance *, const char *,
                                              const MoonshotCallbacks *, void *,
                                              MoonshotRequest **, char **)>::value,
              "complete");
static_assert(std::is_same<decltype(MoonshotApi::cancel),
                           MoonshotStatus (*)(const MoonshotRequest *)>::value,
              "cancel");
static_assert(std::is_same<decltype(MoonshotApi::wait),
                           MoonshotStatus (*)(const MoonshotRequest *, uint32_t)>::value,
              "wait");
static_assert(std::is_same<decltype(MoonshotApi::request_result),
                           MoonshotStatus (*)(const MoonshotRequest *, char **)>::value,
              "request_result");
static_assert(std::is_same<decltype(MoonshotApi::release), void (*)(MoonshotRequest *)>::value,
              "release");
static_assert(std::is_same<decltype(MoonshotApi::free_string), void (*)(char *)>::value,
              "free_string");
static_assert(std::is_same<decltype(MoonshotApi::live_models),
                           MoonshotStatus (*)(const MoonshotInstance *, char **, char **)>::value,
              "live_models");
static_assert(std::is_same<decltype(MoonshotApi::balance), decltype(MoonshotApi::live_models)>::value,
              "balance");
static_assert(std::is_same<decltype(MoonshotCallbacks::on_chunk),
                           MoonshotFlow (*)(void *, const char *, size_t)>::value,
              "on_chunk");
static_assert(std::is_same<decltype(MoonshotCallbacks::on_done),
                           void (*)(void *, MoonshotStatus, const char *, size_t)>::value,
              "on_done");

// A C++ host can fill the callbacks with capture-less lambdas.
[[maybe_unused]] static MoonshotCallbacks make_callbacks() {
    MoonshotCallbacks cb{};
    cb.struct_size = sizeof cb;
    cb.on_chunk = [](void *, const char *, size_t) -> MoonshotFlow { return MOONSHOT_CONTINUE; };
    cb.on_done = [](void *, MoonshotStatus, const char *, size_t) {};
    return cb;
}
