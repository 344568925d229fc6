/* Answers with the whole request it was given: what a plugin can see. */
#include "../abi/dealrules_plugin.h"
DR_PLUGIN_BOILERPLATE
static char out[8192];
DR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {
    if (len > sizeof out - 8) return dr_answer("{\"error\":\"too big\"}", 19);
    memcpy(out, "{\"ok\":", 6);
    memcpy(out + 6, req, len);
    out[6 + len] = '}';
    return dr_answer(out, len + 7);
}
