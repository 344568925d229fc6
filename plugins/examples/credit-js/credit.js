// credit-bureau: a credit score, band and limit from a credit bureau's
// report on the customer, as a dealrules plugin component (ABI v2,
// plugins/abi/dealrules.wit) in JavaScript.
//
// input:  {"customer": {"annual_revenue": "1200000.00",
//          "bureau": {"score": 712, "inquiries_6m": 3, "derogatory": 0,
//                     "utilization": "0.42", "tradelines": [{"status": "current"}, {"status": "late_30"}]}}}
// config: {"limit_share": {"A": "0.25", "B": "0.15", "C": "0.05", "D": "0"}}
// answer: {"score": 681, "band": "B", "credit_limit": 180000.00, "reasons": [...]}
//
// Money stays exact: amounts arrive as decimal strings (or numbers), are
// computed in integer cents with BigInt, never through JavaScript's floats,
// and leave as JSON numbers written digit for digit (`Exact` below).

/** "1200000.5" -> 120000050n (cents); null when it is not a decimal. */
function cents(text) {
  const m = /^(-?)(\d+)(?:\.(\d{1,2}))?$/.exec(String(text).trim());
  if (!m) return null;
  const c = BigInt(m[2]) * 100n + BigInt((m[3] || "").padEnd(2, "0"));
  return m[1] ? -c : c;
}

/** "0.42" -> 4200n (basis points, 1/10,000); null when it is not a decimal in [0, 1]. */
function basisPoints(text) {
  const m = /^(\d+)(?:\.(\d{1,4}))?$/.exec(String(text).trim());
  if (!m) return null;
  const bp = BigInt(m[1]) * 10000n + BigInt((m[2] || "").padEnd(4, "0"));
  return bp <= 10000n ? bp : null;
}

/** A decimal written into the answer's JSON as a number, exactly as given. */
class Exact {
  constructor(text) {
    this.text = text;
  }
}

/** JSON.stringify, with every `Exact` written as a bare number. */
function stringify(value) {
  return JSON.stringify(value, (_k, v) => (v instanceof Exact ? `\u0000${v.text}\u0000` : v)).replace(
    /"\\u0000(-?[0-9.]+)\\u0000"/g,
    "$1",
  );
}

function formatCents(c) {
  const sign = c < 0n ? "-" : "";
  const a = c < 0n ? -c : c;
  return `${sign}${a / 100n}.${String(a % 100n).padStart(2, "0")}`;
}

function score(input, config) {
  const customer = input.customer || {};
  const bureau = customer.bureau;
  if (!bureau || !Number.isInteger(bureau.score)) {
    throw "customer.bureau.score is missing: no bureau report for this customer";
  }
  const revenue = cents(customer.annual_revenue);
  if (revenue === null) throw "customer.annual_revenue must be a decimal";
  const reasons = [];
  let points = bureau.score;
  const inquiries = bureau.inquiries_6m || 0;
  if (inquiries > 2) {
    points -= 15 * (inquiries - 2);
    reasons.push(`${inquiries} credit inquiries in 6 months`);
  }
  const derogatory = bureau.derogatory || 0;
  if (derogatory > 0) {
    points -= 40 * derogatory;
    reasons.push(`${derogatory} derogatory record(s)`);
  }
  const utilization = bureau.utilization === undefined ? 0n : basisPoints(bureau.utilization);
  if (utilization === null) throw "customer.bureau.utilization must be a decimal between 0 and 1";
  if (utilization > 3000n) {
    // One point per percentage point of utilization above 30%.
    points -= Number((utilization - 3000n) / 100n);
    reasons.push(`utilization ${bureau.utilization}`);
  }
  const late = (bureau.tradelines || []).filter((t) => String(t.status || "").startsWith("late")).length;
  if (late > 0) {
    points -= 25 * late;
    reasons.push(`${late} late tradeline(s)`);
  }
  points = Math.max(300, Math.min(850, points));
  const band = points >= 740 ? "A" : points >= 670 ? "B" : points >= 580 ? "C" : "D";
  const share = basisPoints(((config || {}).limit_share || {})[band] ?? "0");
  if (share === null) throw `config.limit_share.${band} must be a decimal between 0 and 1`;
  // revenue (cents) x share (1/10,000), rounded half away from zero.
  const limit = (revenue * share + 5000n) / 10000n;
  return { score: points, band, credit_limit: new Exact(formatCents(limit)), reasons };
}

const FUNCTIONS = { score };

export function functions() {
  return Object.keys(FUNCTIONS);
}

// A thrown string becomes the error the decision shows.
export function call(fn, input, config) {
  const f = FUNCTIONS[fn];
  if (!f) throw `no function \`${fn}\` (functions: ${Object.keys(FUNCTIONS).join(", ")})`;
  return stringify(f(JSON.parse(input), JSON.parse(config)));
}
