/* Recurses without end: stopped by the wasm stack limit. */
#include "../abi/dealrules_plugin.h"
DR_PLUGIN_BOILERPLATE
__attribute__((noinline)) static uint64_t down(volatile uint64_t n) {
    return down(n + 1) + n;
}
DR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {
    return down(len);
}
