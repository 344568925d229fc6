/* Starts with 24 MiB of static data: more memory than a 16 MiB limit
 * before any call. Refused when the pack loads, with both figures. */
#include "../abi/dealrules_plugin.h"
DR_PLUGIN_BOILERPLATE
/* Written at run time, so the compiler must keep all of it. */
static volatile char table[24 << 20];
DR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {
    table[len % sizeof table] = 0;
    return dr_answer(table[(len * 7u) % sizeof table] ? "{\"ok\":1}" : "{\"ok\":0}", 8);
}
