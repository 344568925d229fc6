/* Never returns: stopped by fuel, or by the deadline when fuel is plenty. */
#include "../abi/dealrules_plugin.h"
DR_PLUGIN_BOILERPLATE
DR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {
    volatile uint64_t n = 0;
    for (;;) n++;
    return 0;
}
