/* fx-convert: currency conversion for incentive plans, exact to the cent.
 *
 * convert: {"input": {"amount": "1000.00", "currency": "EUR"}, "config": {"EUR": "1.08", ...}}
 *          -> {"ok": "1080.00"}
 * payout:  {"input": {"totals": {"credit": "130000.00"}, "rep": {"currency": "EUR"}},
 *           "config": {"bonus_rate": "0.01", "EUR": "1.08"}}
 *          -> {"ok": {"amount": "1404.00", "explain": "130000.00 x 0.01 x 1.08 EUR"}}
 * Rates and the bonus rate come from the manifest's config (6 decimals);
 * results round half away from zero to 2 places. */
#include "../../abi/dealrules_plugin.h"

DR_PLUGIN_BOILERPLATE

static char out[512];

static uint64_t fail(const char *msg) {
    int n = 0;
    const char *pre = "{\"error\":\"";
    while (*pre) out[n++] = *pre++;
    while (*msg && n < 500) out[n++] = *msg++;
    out[n++] = '"';
    out[n++] = '}';
    return dr_answer(out, (uint32_t)n);
}

/* The rate for a currency code at p (a JSON string), from the config; 6 places. */
static int rate_for(const char *req, uint32_t len, const char *code_at, int64_t *rate, char *code) {
    if (!code_at || *code_at != '"') return -1;
    int i = 0;
    for (const char *c = code_at + 1; *c && *c != '"' && i < 7; c++) code[i++] = *c;
    code[i] = 0;
    if (i != 3) return -1;
    const char *cfg = dr_find(req, len, "config");
    if (!cfg) return -1;
    return dr_decimal(dr_find(cfg, len - (uint32_t)(cfg - req), code), 6, rate);
}

/* cents x micros / 10^6, rounded half away from zero. */
static int64_t apply(int64_t cents, int64_t micros) {
    __int128 v = (__int128)cents * micros;
    __int128 q = v / 1000000, r = v % 1000000;
    if (r < 0) r = -r;
    if (r * 2 >= 1000000) q += (v < 0) ? -1 : 1;
    return (int64_t)q;
}

DR_EXPORT(convert) uint64_t convert(const char *req, uint32_t len) {
    int64_t cents, rate;
    char code[8];
    if (dr_decimal(dr_find(req, len, "amount"), 2, &cents)) return fail("input.amount must be a decimal");
    if (rate_for(req, len, dr_find(req, len, "currency"), &rate, code)) return fail("no rate for input.currency in the plugin's config");
    int n = 0;
    const char *pre = "{\"ok\":\"";
    while (*pre) out[n++] = *pre++;
    n += dr_format(out + n, apply(cents, rate), 2);
    out[n++] = '"';
    out[n++] = '}';
    return dr_answer(out, (uint32_t)n);
}

DR_EXPORT(payout) uint64_t payout(const char *req, uint32_t len) {
    int64_t credit, bonus, rate;
    char code[8];
    if (dr_decimal(dr_find(req, len, "credit"), 2, &credit)) return fail("input.totals.credit must be a decimal");
    const char *cfg = dr_find(req, len, "config");
    if (!cfg || dr_decimal(dr_find(cfg, len - (uint32_t)(cfg - req), "bonus_rate"), 6, &bonus)) return fail("config.bonus_rate is missing");
    if (rate_for(req, len, dr_find(req, len, "currency"), &rate, code)) return fail("no rate for rep.currency in the plugin's config");
    int64_t amount = apply(apply(credit, bonus), rate);
    int n = 0;
    const char *a = "{\"ok\":{\"amount\":\"";
    while (*a) out[n++] = *a++;
    n += dr_format(out + n, amount, 2);
    const char *b = "\",\"explain\":\"";
    while (*b) out[n++] = *b++;
    n += dr_format(out + n, credit, 2);
    out[n++] = ' '; out[n++] = 'x'; out[n++] = ' ';
    n += dr_format(out + n, bonus, 6);
    out[n++] = ' '; out[n++] = 'x'; out[n++] = ' ';
    n += dr_format(out + n, rate, 6);
    out[n++] = ' ';
    for (int i = 0; code[i]; i++) out[n++] = code[i];
    out[n++] = '"'; out[n++] = '}'; out[n++] = '}';
    return dr_answer(out, (uint32_t)n);
}
