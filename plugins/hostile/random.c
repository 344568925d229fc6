/* Asks the host for 4 GiB of randomness into a small memory: the host must
 * check the length against the memory before it allocates or fills
 * anything, and stop the call. */
#include "../abi/dealrules_plugin.h"
DR_PLUGIN_BOILERPLATE
static char buf[16];
DR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {
    dr_random(buf, 0xFFFFFFF0u);
    return dr_answer("{\"error\":\"the host filled 4 GiB\"}", 33);
}
