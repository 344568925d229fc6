/* Reads the clock: allowed only with the `clock` capability. */
#include <time.h>
#include "../abi/dealrules_plugin.h"
DR_PLUGIN_BOILERPLATE
static char out[64];
DR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {
    long long t = (long long)time(NULL);
    int n = 0;
    const char *pre = "{\"ok\":";
    while (*pre) out[n++] = *pre++;
    n += dr_format(out + n, t, 0);
    out[n++] = '}';
    return dr_answer(out, (uint32_t)n);
}
