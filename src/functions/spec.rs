//! Parsing function specs: built-in names with parameters, products, or expressions.

use super::builtin::{
    AbsHalf, Aliased, ExpSin, LowerBound, Poly, SquareWave, TrigPoly, random_sines,
};
use super::multi::{ExpSinDiag, Product};
use super::{Expression, Function, FunctionError, FunctionOptions};
use std::sync::Arc;

/// (spec, one-line description) of every built-in, for --help and error messages. Each spec is
/// parseable as written (parameters shown with their defaults or an example value), so callers can
/// loop over the list; `prod(...)` and `expsin_diag` parse only in 2-D/3-D.
/// Parameters are written `name:key=value,key=value`, list values separated by `;`.
pub fn builtins() -> Vec<(&'static str, &'static str)> {
    vec![
        ("one", "y = 1 (L = 0, M = 1)"),
        ("const:c=2", "y = c, default c = 1 (L = 0, M = |c|)"),
        ("x", "y = x (L = 1, M = 1)"),
        ("linear:a=1000", "y = a x, default a = 1 (L = M = |a|)"),
        ("x2", "y = x^2, also written x^2 (L = 2, M = 1)"),
        (
            "poly:c=1;-2;3",
            "y = c0 + c1 x + c2 x^2 + ... with c=c0;c1;c2;... (L = max|p'|, M = max|p| on [0,1], \
             located exactly)",
        ),
        (
            "trig:c=0.5,f=1;3,cos=1;0.5,sin=0;2",
            "y = c + sum_k cos_k cos(2 pi f_k x) + sin_k sin(2 pi f_k x), integer f_k (L, M: rigorous \
             bounds from dense sampling, exact for one term)",
        ),
        (
            "aliased:w=3",
            "y = sin(2 pi (s + w) x) for grid size s: equals sin(2 pi w x) on the grid but its coefficient \
             at w is 0 (L = 2 pi |s + w|, M = 1)",
        ),
        (
            "square",
            "y = sign(sin(2 pi x)), jumps at 0 and 1/2 (L = infinity, M = 1)",
        ),
        ("abs_half", "y = |x - 1/2| (L = 1, M = 1/2)"),
        (
            "expsin",
            "y = exp(sin(2 pi x)), coefficients I_w(1) (-i)^w (L = 2 pi 1.4585... = 9.1642..., M = e)",
        ),
        (
            "lowercos:L=1",
            "y = L / (2 pi s) cos(2 pi s x) for grid size s: the discretization lower bound, error/bound \
             = sqrt(3)/(2 pi) at w = 0 (Lipschitz constant L, M = L / (2 pi s))",
        ),
        (
            "randsines:k=10,fmax=16",
            "sum of k sines a sin(2 pi (f x + phi)): f uniform in 1..=fmax, a in [-1,1), phi in [0,1); \
             seed=S optional, default the run's seed (L, M: rigorous bounds from dense sampling)",
        ),
        (
            "expsin_diag",
            "2-D/3-D: y = exp(sin(2 pi (x + y [+ z]))), coefficients on the diagonal w = (k,..,k) \
             (L = sqrt(d) 2 pi 1.4585..., M = e)",
        ),
        (
            "prod(x,expsin)",
            "2-D/3-D: prod(f,g[,h]) = f(x) g(y) [h(z)] of 1-D built-ins; a 1-D built-in alone in \
             dimension d > 1 means the same function in every coordinate",
        ),
    ]
}

/// The built-in names, comma-separated, for error messages.
pub fn builtin_names() -> String {
    builtins()
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

const ONE_D_NAMES: [&str; 15] = [
    "one",
    "const",
    "x",
    "linear",
    "x2",
    "x^2",
    "poly",
    "trig",
    "aliased",
    "square",
    "abs_half",
    "expsin",
    "lowercos",
    "lowerbound",
    "randsines",
];

fn is_builtin_name(name: &str) -> bool {
    ONE_D_NAMES.contains(&name) || name == "expsin_diag"
}

/// Split `name:k=v,k=v` into the name and its parameter text.
fn split_name(spec: &str) -> (&str, &str) {
    match spec.split_once(':') {
        Some((n, p)) => (n.trim(), p.trim()),
        None => (spec.trim(), ""),
    }
}

struct Params<'a> {
    spec: &'a str,
    kv: Vec<(String, String)>,
}

impl<'a> Params<'a> {
    fn new(spec: &'a str, text: &str, allowed: &[&str]) -> Result<Self, FunctionError> {
        let mut kv = Vec::new();
        if !text.is_empty() {
            for part in text.split(',') {
                let Some((k, v)) = part.split_once('=') else {
                    return Err(bad(spec, part, "expected key=value"));
                };
                let k = k.trim();
                let key = allowed.iter().find(|a| a.eq_ignore_ascii_case(k));
                let Some(key) = key else {
                    let msg = if allowed.is_empty() {
                        "this function takes no parameters".to_string()
                    } else {
                        format!("unknown parameter; allowed: {}", allowed.join(", "))
                    };
                    return Err(bad(spec, k, &msg));
                };
                if kv.iter().any(|(kk, _): &(String, String)| kk == key) {
                    return Err(bad(spec, k, "given twice"));
                }
                kv.push((key.to_string(), v.trim().to_string()));
            }
        }
        Ok(Params { spec, kv })
    }
    fn raw(&self, key: &str) -> Option<&str> {
        self.kv
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn f64(&self, key: &str, default: f64) -> Result<f64, FunctionError> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => parse_f64(self.spec, key, v),
        }
    }
    fn int<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, FunctionError> {
        match self.raw(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| bad(self.spec, key, &format!("'{v}' is not a valid integer"))),
        }
    }
    fn list(&self, key: &str) -> Result<Option<Vec<f64>>, FunctionError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => v
                .split(';')
                .map(|x| parse_f64(self.spec, key, x))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }
}

fn parse_f64(spec: &str, key: &str, v: &str) -> Result<f64, FunctionError> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(bad(
            spec,
            key,
            &format!("'{}' is not a finite number", v.trim()),
        )),
    }
}

fn bad(spec: &str, param: &str, message: &str) -> FunctionError {
    FunctionError::BadParameter {
        spec: spec.to_string(),
        param: param.to_string(),
        message: message.to_string(),
    }
}

fn fmt_list(v: &[f64]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

/// A 1-D built-in from its spec, or None when the name is not a 1-D built-in.
fn builtin_1d(
    spec: &str,
    opts: &FunctionOptions,
) -> Option<Result<Box<dyn Function>, FunctionError>> {
    let (name, ptext) = split_name(spec);
    if !ONE_D_NAMES.contains(&name) {
        return None;
    }
    Some(builtin_1d_named(spec, name, ptext, opts))
}

fn builtin_1d_named(
    spec: &str,
    name: &str,
    ptext: &str,
    opts: &FunctionOptions,
) -> Result<Box<dyn Function>, FunctionError> {
    let f: Box<dyn Function> = match name {
        "one" | "const" => {
            let p = Params::new(spec, ptext, if name == "one" { &[] } else { &["c"] })?;
            let c = p.f64("c", 1.0)?;
            let n = if c == 1.0 {
                "one".to_string()
            } else {
                format!("const:c={c}")
            };
            Box::new(Poly::new(vec![c], n))
        }
        "x" | "linear" => {
            let p = Params::new(spec, ptext, if name == "x" { &[] } else { &["a"] })?;
            let a = p.f64("a", 1.0)?;
            let n = if a == 1.0 {
                "x".to_string()
            } else {
                format!("linear:a={a}")
            };
            Box::new(Poly::new(vec![0.0, a], n))
        }
        "x2" | "x^2" => {
            Params::new(spec, ptext, &[])?;
            Box::new(Poly::new(vec![0.0, 0.0, 1.0], "x2".into()))
        }
        "poly" => {
            let p = Params::new(spec, ptext, &["c"])?;
            let c = p
                .list("c")?
                .ok_or_else(|| bad(spec, "c", "required: the coefficients c0;c1;c2;..."))?;
            Box::new(Poly::new(c.clone(), format!("poly:c={}", fmt_list(&c))))
        }
        "trig" => {
            let p = Params::new(spec, ptext, &["c", "f", "cos", "sin"])?;
            let c = p.f64("c", 0.0)?;
            let f = p.list("f")?.unwrap_or_default();
            let n = f.len();
            let a = p.list("cos")?.unwrap_or_else(|| vec![0.0; n]);
            let b = p.list("sin")?.unwrap_or_else(|| vec![0.0; n]);
            for (key, l) in [("cos", &a), ("sin", &b)] {
                if l.len() != n {
                    return Err(bad(
                        spec,
                        key,
                        &format!("has {} entries but f has {n}", l.len()),
                    ));
                }
            }
            let mut terms = Vec::new();
            for i in 0..n {
                if f[i].fract() != 0.0 || f[i].abs() > 1e9 {
                    return Err(bad(spec, "f", "frequencies must be integers (|f| <= 1e9)"));
                }
                // Negative frequency: cos is even, sin is odd.
                let (fi, ai, bi) = if f[i] < 0.0 {
                    (-f[i], a[i], -b[i])
                } else {
                    (f[i], a[i], b[i])
                };
                terms.push((fi as u64, ai, bi));
            }
            let name = if n == 0 {
                format!("trig:c={c}")
            } else {
                format!(
                    "trig:c={c},f={},cos={},sin={}",
                    fmt_list(&f),
                    fmt_list(&a),
                    fmt_list(&b)
                )
            };
            Box::new(TrigPoly::new(c, terms, name))
        }
        "aliased" => {
            let p = Params::new(spec, ptext, &["w"])?;
            Box::new(Aliased {
                w: p.int("w", 3i64)?,
                s: 1,
            })
        }
        "square" => {
            Params::new(spec, ptext, &[])?;
            Box::new(SquareWave)
        }
        "abs_half" => {
            Params::new(spec, ptext, &[])?;
            Box::new(AbsHalf)
        }
        "expsin" => {
            Params::new(spec, ptext, &[])?;
            Box::new(ExpSin)
        }
        "lowercos" | "lowerbound" => {
            let p = Params::new(spec, ptext, &["L"])?;
            let l = p.f64("L", 1.0)?;
            if l <= 0.0 {
                return Err(bad(spec, "L", "must be positive"));
            }
            Box::new(LowerBound { l, s: 1 })
        }
        "randsines" => {
            let p = Params::new(spec, ptext, &["k", "fmax", "seed"])?;
            let k: usize = p.int("k", 10)?;
            let fmax: u64 = p.int("fmax", 16)?;
            if k == 0 || k > 100_000 {
                return Err(bad(spec, "k", "must be in 1..=100000"));
            }
            if fmax == 0 || fmax > 1_000_000 {
                return Err(bad(spec, "fmax", "must be in 1..=1000000"));
            }
            let seed: u64 = p.int("seed", opts.seed)?;
            Box::new(random_sines(k, fmax, seed))
        }
        _ => unreachable!("checked by ONE_D_NAMES"),
    };
    Ok(f)
}

/// Split the inside of `prod(...)` into factor specs: a comma starts a new factor unless the
/// piece after it is a `key=value` parameter of the previous factor.
fn split_factors(inner: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in inner.split(',') {
        let is_param = piece
            .split_once('=')
            .is_some_and(|(k, _)| !k.contains(':') && !k.trim().is_empty());
        match out.last_mut() {
            Some(last) if is_param && last.contains(':') => {
                last.push(',');
                last.push_str(piece.trim());
            }
            _ => out.push(piece.trim().to_string()),
        }
    }
    out
}

/// Parse a function spec for dimension `dim` (1..=3): a built-in name (with optional parameters),
/// `prod(...)` of 1-D built-ins, or, failing that, an expression in x, y, z ([`Expression`]).
/// `opts.lipschitz` / `opts.sup` replace the estimates of expressions (built-ins keep their exact
/// constants); `opts.seed` is the default seed of `randsines`.
pub fn parse(
    spec: &str,
    dim: usize,
    opts: &FunctionOptions,
) -> Result<Box<dyn Function>, FunctionError> {
    let spec = spec.trim();
    if !(1..=3).contains(&dim) {
        return Err(FunctionError::Dimension {
            spec: spec.to_string(),
            message: format!("dimension {dim} is not supported (1, 2 or 3)"),
        });
    }
    for (key, v) in [("lipschitz", opts.lipschitz), ("sup", opts.sup)] {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(bad(spec, key, &format!("{v} must be finite and >= 0")));
        }
    }
    if spec.is_empty() {
        return Err(FunctionError::Parse {
            spec: spec.to_string(),
            message: "empty spec".into(),
            builtins: builtin_names(),
        });
    }
    if let Some(inner) = spec.strip_prefix("prod(").and_then(|r| r.strip_suffix(')')) {
        let parts = split_factors(inner);
        if parts.len() != dim {
            return Err(FunctionError::Dimension {
                spec: spec.to_string(),
                message: format!(
                    "prod has {} factors but the dimension is {dim}",
                    parts.len()
                ),
            });
        }
        let mut factors: Vec<Arc<dyn Function>> = Vec::new();
        for p in &parts {
            match builtin_1d(p, opts) {
                Some(f) => factors.push(Arc::from(f?)),
                None => {
                    return Err(FunctionError::Parse {
                        spec: spec.to_string(),
                        message: format!(
                            "factor '{p}' is not a 1-D built-in (prod takes built-ins only; write \
                             other products as an expression)"
                        ),
                        builtins: builtin_names(),
                    });
                }
            }
        }
        return Ok(Box::new(Product::new(factors)));
    }
    let (name, ptext) = split_name(spec);
    if name == "expsin_diag" {
        Params::new(spec, ptext, &[])?;
        if dim == 1 {
            return Err(FunctionError::Dimension {
                spec: spec.to_string(),
                message: "expsin_diag needs dimension 2 or 3 (use expsin in 1-D)".into(),
            });
        }
        return Ok(Box::new(ExpSinDiag { dim }));
    }
    // "x^2" is the built-in x2 only in 1-D; in 2-D/3-D it reads as the expression x^2 (a function
    // of x alone), not as the product x^2 y^2 that a built-in name would mean there.
    if is_builtin_name(name) && !(name == "x^2" && dim > 1) {
        if dim == 1 {
            return builtin_1d_named(spec, name, ptext, opts);
        }
        let mut factors: Vec<Arc<dyn Function>> = Vec::new();
        for _ in 0..dim {
            factors.push(Arc::from(builtin_1d_named(spec, name, ptext, opts)?));
        }
        return Ok(Box::new(Product::new(factors)));
    }
    Ok(Box::new(Expression::new(spec, dim, opts)?))
}
