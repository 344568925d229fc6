/* Asks for memory until it gets none: stopped at the manifest's limit. */
#include "../abi/dealrules_plugin.h"
DR_PLUGIN_BOILERPLATE
/* Kept, so the compiler cannot drop the allocations. */
static char *volatile kept[4096];
DR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {
    for (int i = 0; i < 4096; i++) {
        char *p = malloc(1 << 20);
        if (!p) return dr_answer("{\"error\":\"out of memory\"}", 25);
        memset(p, 1, 1 << 20);
        kept[i] = p;
    }
    return dr_answer("{\"error\":\"4 GiB later, still alive\"}", 36);
}
