/* Answers with 4 MiB: refused by the output limit. */
#include "../abi/dealrules_plugin.h"
DR_PLUGIN_BOILERPLATE
DR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {
    uint32_t n = 4u << 20;
    char *p = malloc(n);
    memset(p, 'x', n);
    memcpy(p, "{\"ok\":\"", 7);
    p[n - 2] = '"';
    p[n - 1] = '}';
    return dr_answer(p, n);
}
