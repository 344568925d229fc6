/* Traps at once. */
#include "../abi/dealrules_plugin.h"
DR_PLUGIN_BOILERPLATE
DR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {
    __builtin_trap();
}
