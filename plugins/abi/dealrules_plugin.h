/* dealrules plugin ABI, version 1 (see ABI.md). For C plugins built with
 *   clang-19 --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model=reactor \
 *     -Wl,--stack-first -Wl,-z,stack-size=65536 -Wl,--strip-all -o plugin.wasm plugin.c
 */
#ifndef DEALRULES_PLUGIN_H
#define DEALRULES_PLUGIN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DR_EXPORT(name) __attribute__((export_name(#name)))
#define DR_IMPORT(name) __attribute__((import_module("dealrules"), import_name(#name)))

/* Capability imports: link only when used; calling one without the
 * capability in the manifest stops the call. */
DR_IMPORT(log) void dr_log(const char *msg, uint32_t len);
DR_IMPORT(now_ms) int64_t dr_now_ms(void);
DR_IMPORT(random) void dr_random(void *buf, uint32_t len);

/* Every plugin defines these two with DR_PLUGIN_BOILERPLATE. */
#define DR_PLUGIN_BOILERPLATE                                                  \
    DR_EXPORT(dealrules_abi_v1) void dealrules_abi_v1(void) {}                 \
    DR_EXPORT(dr_alloc) void *dr_alloc(uint32_t n) { return malloc(n ? n : 1); }

/* Packs an answer's place for the engine. */
static inline uint64_t dr_answer(const char *out, uint32_t len) {
    return ((uint64_t)(uintptr_t)out << 32) | (uint64_t)len;
}

/* Finds the member `"key": value` in the request and returns a pointer to
 * its value (or NULL). A small helper for flat requests; use a JSON parser
 * for anything deeper. */
static inline const char *dr_find(const char *json, uint32_t len, const char *key) {
    size_t k = strlen(key);
    for (uint32_t i = 0; i + k + 3 <= len; i++) {
        if (json[i] == '"' && memcmp(json + i + 1, key, k) == 0 && json[i + 1 + k] == '"') {
            const char *p = json + i + k + 2;
            while (p < json + len && *p == ' ') p++;
            if (p >= json + len || *p != ':') continue;
            p++;
            while (p < json + len && *p == ' ') p++;
            return p;
        }
    }
    return NULL;
}

/* Reads a decimal (`123.45`, `"123.45"`, `-7`) as an integer scaled by
 * 10^places, rounding half away from zero; 0 on success. Exact: no
 * floating point. */
static inline int dr_decimal(const char *p, int places, int64_t *out) {
    if (!p) return -1;
    if (*p == '"') p++;
    int neg = 0;
    if (*p == '-') { neg = 1; p++; }
    if (*p < '0' || *p > '9') return -1;
    int64_t v = 0;
    while (*p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    int got = 0, next = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (got < places) { v = v * 10 + (*p - '0'); got++; }
            else if (got == places) { next = *p - '0'; got++; }
            p++;
        }
    }
    for (; got < places; got++) v *= 10;
    if (next >= 5) v += 1;
    *out = neg ? -v : v;
    return 0;
}

/* Writes an integer scaled by 10^places as a decimal string; its length. */
static inline int dr_format(char *buf, int64_t v, int places) {
    char tmp[32];
    int n = 0, neg = v < 0;
    uint64_t u = neg ? (uint64_t)(-v) : (uint64_t)v;
    do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u || n <= places);
    int len = 0;
    if (neg) buf[len++] = '-';
    for (int i = n - 1; i >= 0; i--) {
        buf[len++] = tmp[i];
        if (i == places && places > 0) buf[len++] = '.';
    }
    return len;
}

#endif
