/* Tries to read a file: there are no files. */
#include <stdio.h>
#include "../abi/dealrules_plugin.h"
DR_PLUGIN_BOILERPLATE
DR_EXPORT(run) uint64_t run(const char *req, uint32_t len) {
    FILE *f = fopen("/etc/passwd", "r");
    if (!f) return dr_answer("{\"error\":\"no file\"}", 19);
    static char buf[64];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    return dr_answer(buf, (uint32_t)n);
}
