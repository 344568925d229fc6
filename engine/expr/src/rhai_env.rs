//! The sandboxed Rhai engine: limits, helpers, decimal semantics, and the
//! conversions between [`Value`] and Rhai's `Dynamic`.

use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, INT, ImmutableString};
use rust_decimal::Decimal;
use smol_str::SmolStr;

use crate::error::EvalError;
use crate::funcs;
use crate::value::{Map, Value};

/// Bounds on what one expression or script call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rhai operations per call; a runaway loop ends here.
    pub max_operations: u64,
    /// Nesting depth of expressions (and of expressions inside functions).
    pub max_expr_depth: usize,
    /// Depth of script function calls (recursion).
    pub max_call_levels: usize,
    /// Bytes in one string value.
    pub max_string_size: usize,
    /// Items in one list or mapping built by a script.
    pub max_collection_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 1_000_000,
            max_expr_depth: 64,
            max_call_levels: 48,
            max_string_size: 1 << 20,
            max_collection_size: 10_000,
        }
    }
}

/// Builds a Rhai engine with no file, network, module, `eval` or process
/// access, the given limits, exact decimal division, and the policy helpers.
pub fn sandboxed_engine(limits: Limits) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_collection_size)
        .set_max_map_size(limits.max_collection_size)
        .set_fail_on_invalid_map_property(true)
        // Registered operators below must win over Rhai's integer fast path.
        .set_fast_operators(false);
    engine.disable_symbol("eval");
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});

    // All numbers are decimals: `7 / 2` is 3.5, never integer division.
    engine.register_fn("/", |a: INT, b: INT| -> Result<Decimal, Box<EvalAltResult>> {
        funcs::div(Decimal::from(a), Decimal::from(b)).map_err(|e| e.to_string().into())
    });
    strict_ordering(&mut engine);
    engine.register_fn("has", |m: rhai::Map, key: ImmutableString| m.contains_key(key.as_str()));
    strict_ordering(&mut engine);
    engine.register_fn("has", |_: (), _: ImmutableString| false);
    engine.register_fn("get", |m: rhai::Map, key: ImmutableString, default: Dynamic| {
        m.get(key.as_str()).cloned().filter(|v| !v.is_unit()).unwrap_or(default)
    });
    engine.register_fn(
        "days_between",
        |a: ImmutableString, b: ImmutableString| -> Result<Decimal, Box<EvalAltResult>> {
            funcs::days_between(&a, &b).map_err(|e| e.to_string().into())
        },
    );
    engine.register_fn(
        "date",
        |s: ImmutableString| -> Result<ImmutableString, Box<EvalAltResult>> {
            funcs::date(&s).map(|d| d.into()).map_err(|e| e.to_string().into())
        },
    );
    engine.register_fn(
        "add_days",
        |s: ImmutableString, n: INT| -> Result<ImmutableString, Box<EvalAltResult>> {
            funcs::add_days(&s, Decimal::from(n))
                .map(|d| d.into())
                .map_err(|e| e.to_string().into())
        },
    );
    engine.register_fn(
        "add_days",
        |s: ImmutableString, n: Decimal| -> Result<ImmutableString, Box<EvalAltResult>> {
            funcs::add_days(&s, n)
                .map(|d| d.into())
                .map_err(|e| e.to_string().into())
        },
    );
    // Numeric text counts as a number here too, as on the compiled path.
    engine.register_fn(
        "add_days",
        |s: ImmutableString, n: ImmutableString| -> Result<ImmutableString, Box<EvalAltResult>> {
            let n = crate::ops::num(&Value::str(&n), "add_days()").map_err(|e| e.to_string())?;
            funcs::add_days(&s, n)
                .map(|d| d.into())
                .map_err(|e| e.to_string().into())
        },
    );
    money_functions(&mut engine);
    engine.register_fn("-", |a: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
        crate::ops::negate(&Value::str(&a))
            .map(|v| to_dynamic(&v))
            .map_err(|e| e.to_string().into())
    });
    engine
}

/// Converts a fact into a Rhai value; every number becomes a `Decimal`.
pub fn to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Num(d) => Dynamic::from_decimal(*d),
        Value::Str(s) => Dynamic::from(ImmutableString::from(s.as_str())),
        Value::List(l) => Dynamic::from_array(l.iter().map(to_dynamic).collect()),
        Value::Map(m) => {
            let mut out = rhai::Map::new();
            for (k, v) in m.iter() {
                out.insert(k.as_str().into(), to_dynamic(v));
            }
            Dynamic::from_map(out)
        }
    }
}

/// Converts a Rhai value back; integers become decimals.
pub fn from_dynamic(d: &Dynamic) -> Result<Value, EvalError> {
    if d.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = d.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = d.as_int() {
        return Ok(Value::Num(Decimal::from(i)));
    }
    if let Ok(x) = d.as_decimal() {
        return Ok(Value::Num(x));
    }
    if let Ok(c) = d.as_char() {
        return Ok(Value::Str(SmolStr::new(c.to_string())));
    }
    if d.is_string() {
        return Ok(Value::Str(SmolStr::new(
            d.clone().into_immutable_string().unwrap_or_default().as_str(),
        )));
    }
    if d.is_array() {
        let arr = d
            .read_lock::<rhai::Array>()
            .ok_or_else(|| EvalError::Script("array is locked".into()))?;
        return Ok(Value::List(Arc::new(
            arr.iter().map(from_dynamic).collect::<Result<_, _>>()?,
        )));
    }
    if d.is_map() {
        let m = d
            .read_lock::<rhai::Map>()
            .ok_or_else(|| EvalError::Script("map is locked".into()))?;
        let mut out = Map::with_capacity(m.len());
        for (k, v) in m.iter() {
            out.insert(k.as_str(), from_dynamic(v)?);
        }
        return Ok(Value::map(out));
    }
    Err(EvalError::Type(format!(
        "a script returned a value of type `{}`, which a policy cannot use",
        d.type_name()
    )))
}

/// Maps Rhai's runtime errors to ours, keeping a script's `throw` apart.
pub fn map_rhai_error(err: &EvalAltResult) -> EvalError {
    use EvalAltResult as E;
    match err {
        E::ErrorRuntime(v, _) => EvalError::Thrown(v.to_string()),
        E::ErrorTooManyOperations(_) => EvalError::Limit("too many operations (a loop that does not end?)".into()),
        E::ErrorStackOverflow(_) => EvalError::Limit("calls nested too deep (runaway recursion?)".into()),
        E::ErrorDataTooLarge(what, _) => EvalError::Limit(format!("{what} too large")),
        E::ErrorTerminated(..) => EvalError::Limit("terminated".into()),
        E::ErrorPropertyNotFound(name, _) => EvalError::Missing {
            path: format!("field `{name}`"),
        },
        E::ErrorVariableNotFound(name, _) => EvalError::Missing {
            path: format!("`{name}`"),
        },
        E::ErrorInFunctionCall(name, _, inner, _) if name != "evaluate" => match map_rhai_error(inner) {
            EvalError::Script(m) => EvalError::Script(format!("in function `{name}`: {m}")),
            other => other,
        },
        E::ErrorInFunctionCall(_, _, inner, _) => map_rhai_error(inner),
        E::ErrorArithmetic(m, _) => EvalError::Arithmetic(m.clone()),
        E::ErrorFunctionNotFound(sig, _) => EvalError::Type(format!("no function or operator `{sig}`")),
        other => EvalError::Script(other.to_string()),
    }
}

/// Mixed operands follow the compiled path's rules exactly (the same
/// functions decide): numeric text next to a number is a number, and
/// ordering values of different types is an error (Rhai alone would answer
/// `"APAC" > 3` with false, hiding a policy author's mistake).
fn strict_ordering(engine: &mut Engine) {
    use crate::ops::{ArithOp, CmpOp, arith, compare};
    fn both<A: rhai::Variant + Clone, B: rhai::Variant + Clone>(engine: &mut Engine) {
        let cmps = [
            ("<", CmpOp::Lt),
            ("<=", CmpOp::Le),
            (">", CmpOp::Gt),
            (">=", CmpOp::Ge),
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
        ];
        for (name, op) in cmps {
            engine.register_fn(name, move |a: A, b: B| -> Result<bool, Box<EvalAltResult>> {
                let (a, b) = (
                    from_dynamic(&Dynamic::from(a)).map_err(|e| e.to_string())?,
                    from_dynamic(&Dynamic::from(b)).map_err(|e| e.to_string())?,
                );
                compare(op, &a, &b).map_err(|e| e.to_string().into())
            });
        }
    }
    fn maths<A: rhai::Variant + Clone, B: rhai::Variant + Clone>(engine: &mut Engine, ops: &[(&'static str, ArithOp)]) {
        for &(name, op) in ops {
            engine.register_fn(name, move |a: A, b: B| -> Result<Dynamic, Box<EvalAltResult>> {
                let (a, b) = (
                    from_dynamic(&Dynamic::from(a)).map_err(|e| e.to_string())?,
                    from_dynamic(&Dynamic::from(b)).map_err(|e| e.to_string())?,
                );
                arith(op, &a, &b)
                    .map(|v| to_dynamic(&v))
                    .map_err(|e| e.to_string().into())
            });
        }
    }
    let all = [
        ("+", ArithOp::Add),
        ("-", ArithOp::Sub),
        ("*", ArithOp::Mul),
        ("/", ArithOp::Div),
        ("%", ArithOp::Rem),
    ];
    both::<ImmutableString, INT>(engine);
    both::<ImmutableString, Decimal>(engine);
    both::<INT, ImmutableString>(engine);
    both::<Decimal, ImmutableString>(engine);
    both::<(), INT>(engine);
    both::<(), Decimal>(engine);
    both::<INT, ()>(engine);
    both::<Decimal, ()>(engine);
    both::<(), ImmutableString>(engine);
    both::<ImmutableString, ()>(engine);
    both::<bool, bool>(engine);
    maths::<ImmutableString, INT>(engine, &all);
    maths::<ImmutableString, Decimal>(engine, &all);
    maths::<INT, ImmutableString>(engine, &all);
    maths::<Decimal, ImmutableString>(engine, &all);
    maths::<ImmutableString, ImmutableString>(engine, &all[1..]);
}

/// The rounding family (`round`, `round_even`, `floor`, `ceil`, with or
/// without places), `min`, `max` and `abs`, registered for every mix of
/// integer, decimal, text and nothing so that Rhai runs the very functions
/// the compiled path runs. Rhai's own `round` on a decimal rounds half to
/// even; these replace it.
fn money_functions(engine: &mut Engine) {
    use crate::funcs::RoundMode;
    use crate::ops::{absolute, extreme, rounded};
    type Out = Result<Dynamic, Box<EvalAltResult>>;
    fn val<T: rhai::Variant + Clone>(x: T) -> Result<Value, Box<EvalAltResult>> {
        from_dynamic(&Dynamic::from(x)).map_err(|e| e.to_string().into())
    }
    fn out(r: Result<Value, EvalError>) -> Out {
        r.map(|v| to_dynamic(&v)).map_err(|e| e.to_string().into())
    }
    fn one<A: rhai::Variant + Clone>(
        engine: &mut Engine,
        name: &'static str,
        f: impl Fn(&Value) -> Result<Value, EvalError> + Copy + Send + Sync + 'static,
    ) {
        engine.register_fn(name, move |a: A| -> Out { out(f(&val(a)?)) });
    }
    fn two<A: rhai::Variant + Clone, B: rhai::Variant + Clone>(
        engine: &mut Engine,
        name: &'static str,
        f: impl Fn(&Value, &Value) -> Result<Value, EvalError> + Copy + Send + Sync + 'static,
    ) {
        engine.register_fn(name, move |a: A, b: B| -> Out { out(f(&val(a)?, &val(b)?)) });
    }
    macro_rules! every_type {
        ($engine:expr, $name:expr, one: $f:expr) => {
            one::<INT>($engine, $name, $f);
            one::<Decimal>($engine, $name, $f);
            one::<ImmutableString>($engine, $name, $f);
            one::<()>($engine, $name, $f);
        };
        ($engine:expr, $name:expr, two: $f:expr) => {
            every_type!(@second $engine, $name, $f, INT);
            every_type!(@second $engine, $name, $f, Decimal);
            every_type!(@second $engine, $name, $f, ImmutableString);
            every_type!(@second $engine, $name, $f, ());
        };
        (@second $engine:expr, $name:expr, $f:expr, $a:ty) => {
            two::<$a, INT>($engine, $name, $f);
            two::<$a, Decimal>($engine, $name, $f);
            two::<$a, ImmutableString>($engine, $name, $f);
            two::<$a, ()>($engine, $name, $f);
        };
    }
    for mode in [
        RoundMode::HalfAwayFromZero,
        RoundMode::HalfEven,
        RoundMode::Floor,
        RoundMode::Ceil,
    ] {
        every_type!(engine, mode.name(), one: move |x: &Value| rounded(mode, x, None));
        every_type!(engine, mode.name(), two: move |x: &Value, p: &Value| rounded(mode, x, Some(p)));
    }
    every_type!(engine, "min", two: |a: &Value, b: &Value| extreme(false, a, b));
    every_type!(engine, "max", two: |a: &Value, b: &Value| extreme(true, a, b));
    every_type!(engine, "abs", one: absolute);
}
