// upkeep check written in C: is an expected string in a file?
//
// Config:
//   path      (required) absolute path of the file; the operator must grant it (read-file)
//   contains  (required) the text to look for
//
// Capabilities: read-file, log. Built by build.sh with clang for wasm32 (no WASI at all: the
// component imports only upkeep:plugin/host), against bindings that wit-bindgen generates from
// plugin-sdk/wit at build time.

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_plugin.h"

typedef check_plugin_string_t str_t;

// A string of the config, or NULL.
static const str_t *config_get(const check_plugin_list_tuple2_string_string_t *config, const char *key) {
    size_t key_len = strlen(key);
    const str_t *found = NULL;
    for (size_t i = 0; i < config->len; i++) {
        const str_t *k = &config->ptr[i].f0;
        if (k->len == key_len && memcmp(k->ptr, key, key_len) == 0) {
            found = &config->ptr[i].f1;  // the last one wins
        }
    }
    return found;
}

static bool contains(const str_t *haystack, const str_t *needle) {
    if (needle->len == 0) return true;
    if (needle->len > haystack->len) return false;
    for (size_t i = 0; i + needle->len <= haystack->len; i++) {
        if (memcmp(haystack->ptr + i, needle->ptr, needle->len) == 0) return true;
    }
    return false;
}

static void log_line(upkeep_plugin_host_log_level_t level, const char *message) {
    str_t m;
    check_plugin_string_set(&m, message);
    upkeep_plugin_host_host_error_t err;
    if (!upkeep_plugin_host_log(level, &m, &err)) {
        upkeep_plugin_host_host_error_free(&err);
    }
}

// Sets `ret` to "<prefix><s>", copied.
static void set_message(str_t *ret, const char *prefix, const str_t *s) {
    size_t prefix_len = strlen(prefix);
    size_t len = prefix_len + (s ? s->len : 0);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) abort();
    memcpy(buf, prefix, prefix_len);
    if (s && s->len) memcpy(buf + prefix_len, s->ptr, s->len);
    ret->ptr = buf;
    ret->len = len;
}

static void describe_error(str_t *ret, const char *prefix, const upkeep_plugin_host_host_error_t *err) {
    switch (err->tag) {
    case UPKEEP_PLUGIN_TYPES_HOST_ERROR_NOT_GRANTED: {
        str_t what;
        check_plugin_string_set(&what, "a capability is not granted");
        set_message(ret, prefix, &what);
        break;
    }
    case UPKEEP_PLUGIN_TYPES_HOST_ERROR_DENIED:
        set_message(ret, prefix, &err->val.denied);
        break;
    default:
        set_message(ret, prefix, &err->val.failed);
        break;
    }
}

void exports_check_plugin_metadata(check_plugin_metadata_t *ret) {
    check_plugin_string_dup(&ret->name, "file-contains");
    check_plugin_string_dup(&ret->version, "0.1.0");
    check_plugin_string_dup(&ret->description, "healthy while a file contains a string (a plugin written in C)");
    ret->capabilities.len = 2;
    ret->capabilities.ptr = malloc(2 * sizeof(upkeep_plugin_types_capability_t));
    if (!ret->capabilities.ptr) abort();
    ret->capabilities.ptr[0] = UPKEEP_PLUGIN_TYPES_CAPABILITY_READ_FILE;
    ret->capabilities.ptr[1] = UPKEEP_PLUGIN_TYPES_CAPABILITY_LOG;
}

void exports_check_plugin_check(check_plugin_list_tuple2_string_string_t *config, check_plugin_check_result_t *ret) {
    const str_t *path = config_get(config, "path");
    const str_t *needle = config_get(config, "contains");
    ret->healthy = false;
    if (!path || !needle) {
        check_plugin_string_dup(&ret->message, "config `path` and `contains` are required");
        check_plugin_list_tuple2_string_string_free(config);
        return;
    }
    str_t content;
    upkeep_plugin_host_host_error_t err;
    if (!upkeep_plugin_host_read_file((str_t *)path, &content, &err)) {
        describe_error(&ret->message, "cannot read the file: ", &err);
        upkeep_plugin_host_host_error_free(&err);
    } else if (contains(&content, needle)) {
        ret->healthy = true;
        set_message(&ret->message, "found ", needle);
        check_plugin_string_free(&content);
    } else {
        log_line(UPKEEP_PLUGIN_TYPES_LOG_LEVEL_DEBUG, "expected text not found");
        set_message(&ret->message, "not found: ", needle);
        check_plugin_string_free(&content);
    }
    check_plugin_list_tuple2_string_string_free(config);
}
