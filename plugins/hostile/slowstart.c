/* Spends its fuel while starting (a constructor run by `_initialize`),
 * before any call: the error must say the limit was hit while starting. */
#include "../abi/dealrules_plugin.h"
DR_PLUGIN_BOILERPLATE
static volatile unsigned long long spun;
__attribute__((constructor)) static void warm_up(void) {
    for (;;) spun++;
}
DR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {
    return dr_answer("{\"ok\":1}", 8);
}
