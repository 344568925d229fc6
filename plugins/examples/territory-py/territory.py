"""territory: an account's sales territory, and a rep's territory bonus, as
a dealrules plugin component (ABI v2, plugins/abi/dealrules.wit) in Python.

lookup  input:  {"account": {"country": "DE", "postal_code": "80331"}}
        answer: {"territory": "DACH South", "team": "munich", "matched": "DE 8"}
bonus   input:  {"rep": {"territory": "DACH South"}, "totals": {"credit": "130000.00"}}
        answer: {"amount": "1950.00", "explain": "130000.00 x 0.015 (DACH South)"}

config: {"territories": [{"name": "DACH South", "team": "munich", "country": "DE",
                          "postal_prefixes": ["8", "9"], "bonus_rate": "0.015"}, ...]}

Numbers stay exact: amounts are read with decimal.Decimal (json.loads with
parse_float=Decimal) and answered as strings, rounded half away from zero.
"""

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import wit_world
from componentize_py_types import Err


def _territories(config):
    territories = (config or {}).get("territories")
    if not isinstance(territories, list):
        raise Err("config.territories must be a list of territories")
    return territories


def lookup(inp, config):
    account = inp.get("account") or {}
    country = str(account.get("country") or "").upper()
    if not country:
        raise Err('account.country must be a country code such as "DE"')
    postal = str(account.get("postal_code") or "").replace(" ", "")
    best = None
    for t in _territories(config):
        if str(t.get("country", "")).upper() != country:
            continue
        prefixes = t.get("postal_prefixes") or []
        if not prefixes:
            match = (0, country)
        else:
            hits = [p for p in prefixes if postal.startswith(p)]
            if not hits:
                continue
            p = max(hits, key=len)
            match = (len(p), f"{country} {p}")
        if best is None or match[0] > best[0]:
            best = (match[0], t, match[1])
    if best is None:
        raise Err(f"no territory covers {country} {postal}".rstrip())
    _, t, how = best
    return {"territory": t.get("name"), "team": t.get("team"), "matched": how}


def bonus(inp, config):
    name = (inp.get("rep") or {}).get("territory")
    if not name:
        raise Err("rep.territory is missing")
    try:
        credit = Decimal(str((inp.get("totals") or {}).get("credit", "0")))
    except InvalidOperation:
        raise Err("totals.credit must be a decimal")
    for t in _territories(config):
        if t.get("name") == name:
            rate = Decimal(str(t.get("bonus_rate", "0")))
            amount = (credit * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            shown = credit.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            return {"amount": str(amount), "explain": f"{shown} x {rate} ({name})"}
    raise Err(f"no territory named {name!r} in config.territories")


FUNCTIONS = {"lookup": lookup, "bonus": bonus}


class WitWorld(wit_world.WitWorld):
    def functions(self):
        return list(FUNCTIONS)

    def call(self, function, input, config):
        f = FUNCTIONS.get(function)
        if f is None:
            raise Err(f"no function `{function}` (functions: {', '.join(FUNCTIONS)})")
        answer = f(json.loads(input, parse_float=Decimal), json.loads(config, parse_float=Decimal))
        return json.dumps(answer, default=str)
