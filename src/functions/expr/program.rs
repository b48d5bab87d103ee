//! A parsed expression compiled to a postfix program, evaluated over any [`Scalar`]: f64 for
//! sampling, intervals for enclosures, slopes for Lipschitz bounds. One program, so every mode
//! computes the same function.
//!
//! Constant subexpressions are folded at compile time into an f64 value (what sampling uses) and
//! a certified interval (what enclosures use): `2*pi` becomes one constant whose interval
//! contains the real 2 pi. Literals that are not exact f64 values are widened by an ulp
//! ([`crate::interval::literal`]), so enclosures are about the function the user wrote.

use super::parse::{BinOp, NamedConst, Node};
use crate::interval::elementary::{self, Func};
use crate::interval::{Certified, Directed, Interval, Slope, iv, literal, point};

/// Deepest operand stack a program may need.
pub const MAX_STACK: usize = 48;

/// Longest program accepted (operations after constant folding): enclosures and certification
/// cost grows with it.
pub const MAX_OPS: usize = 4096;

/// A folded constant.
#[derive(Clone, Copy, Debug)]
pub struct Constant {
    /// Nearest f64, as sampling computes it.
    pub value: f64,
    /// Contains the exact real value.
    pub iv: Interval,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Const(u16),
    Var(u8),
    Neg,
    Add,
    Sub,
    Mul,
    Div,
    /// Power with an integer constant exponent.
    Powi(i32),
    /// Power with a non-integer constant exponent (index into the constants).
    PowC(u16),
    Pow,
    Call(Func),
    Min,
    Max,
}

/// Values a program can be evaluated over; `D` says where the endpoints of interval elementary
/// functions come from (f64 ignores it).
pub trait Scalar: Copy {
    fn zero() -> Self;
    fn constant(c: &Constant) -> Self;
    fn neg(self) -> Self;
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn powi(self, n: i32) -> Self;
    fn powc<D: Directed>(self, c: &Constant) -> Self;
    fn pow<D: Directed>(self, o: Self) -> Self;
    fn call<D: Directed>(self, f: Func) -> Self;
    fn min(self, o: Self) -> Self;
    fn max(self, o: Self) -> Self;
}

impl Scalar for f64 {
    fn zero() -> Self {
        0.0
    }
    fn constant(c: &Constant) -> Self {
        c.value
    }
    fn neg(self) -> Self {
        -self
    }
    fn add(self, o: Self) -> Self {
        self + o
    }
    fn sub(self, o: Self) -> Self {
        self - o
    }
    fn mul(self, o: Self) -> Self {
        self * o
    }
    fn div(self, o: Self) -> Self {
        self / o
    }
    fn powi(self, n: i32) -> Self {
        self.powf(n as f64)
    }
    fn powc<D: Directed>(self, c: &Constant) -> Self {
        self.powf(c.value)
    }
    fn pow<D: Directed>(self, o: Self) -> Self {
        self.powf(o)
    }
    fn call<D: Directed>(self, f: Func) -> Self {
        f.eval(self)
    }
    fn min(self, o: Self) -> Self {
        if self.is_nan() || o.is_nan() {
            f64::NAN
        } else {
            f64::min(self, o)
        }
    }
    fn max(self, o: Self) -> Self {
        if self.is_nan() || o.is_nan() {
            f64::NAN
        } else {
            f64::max(self, o)
        }
    }
}

impl Scalar for Interval {
    fn zero() -> Self {
        point(0.0)
    }
    fn constant(c: &Constant) -> Self {
        c.iv
    }
    fn neg(self) -> Self {
        -self
    }
    fn add(self, o: Self) -> Self {
        self + o
    }
    fn sub(self, o: Self) -> Self {
        self - o
    }
    fn mul(self, o: Self) -> Self {
        self * o
    }
    fn div(self, o: Self) -> Self {
        elementary::div(self, o)
    }
    fn powi(self, n: i32) -> Self {
        elementary::powi(self, n)
    }
    fn powc<D: Directed>(self, c: &Constant) -> Self {
        elementary::powc::<D>(self, c.iv)
    }
    fn pow<D: Directed>(self, o: Self) -> Self {
        elementary::pow::<D>(self, o)
    }
    fn call<D: Directed>(self, f: Func) -> Self {
        elementary::apply::<D>(f, self)
    }
    fn min(self, o: Self) -> Self {
        Interval::min(self, o)
    }
    fn max(self, o: Self) -> Self {
        Interval::max(self, o)
    }
}

impl<const N: usize> Scalar for Slope<N> {
    fn zero() -> Self {
        Slope::constant(point(0.0))
    }
    fn constant(c: &Constant) -> Self {
        Slope::constant(c.iv)
    }
    fn neg(self) -> Self {
        -self
    }
    fn add(self, o: Self) -> Self {
        self + o
    }
    fn sub(self, o: Self) -> Self {
        self - o
    }
    fn mul(self, o: Self) -> Self {
        self * o
    }
    fn div(self, o: Self) -> Self {
        self / o
    }
    fn powi(self, n: i32) -> Self {
        Slope::powi(self, n)
    }
    fn powc<D: Directed>(self, c: &Constant) -> Self {
        Slope::powc::<D>(self, c.iv)
    }
    fn pow<D: Directed>(self, o: Self) -> Self {
        Slope::pow::<D>(self, o)
    }
    fn call<D: Directed>(self, f: Func) -> Self {
        self.apply::<D>(f)
    }
    fn min(self, o: Self) -> Self {
        Slope::min(self, o)
    }
    fn max(self, o: Self) -> Self {
        Slope::max(self, o)
    }
}

/// Why a parsed expression cannot be compiled.
#[derive(Debug, PartialEq)]
pub enum CompileError {
    /// A variable outside the dimension's x, y, z (name, column).
    UnknownVariable(String, usize),
    /// The program needs a deeper operand stack than [`MAX_STACK`].
    TooDeep(usize),
    /// More than 65536 constants, or more than [`MAX_OPS`] operations.
    TooLarge(usize),
}

/// A compiled expression.
#[derive(Clone, Debug)]
pub struct Program {
    ops: Vec<Op>,
    consts: Vec<Constant>,
}

fn named(c: NamedConst) -> Constant {
    // f64 PI, E and TAU are the nearest values; the exact ones lie within an ulp.
    let v = match c {
        NamedConst::Pi => std::f64::consts::PI,
        NamedConst::E => std::f64::consts::E,
        NamedConst::Tau => std::f64::consts::TAU,
    };
    Constant {
        value: v,
        iv: iv(v.next_down(), v.next_up()),
    }
}

fn has_var(n: &Node) -> bool {
    match n {
        Node::Num { .. } | Node::Const(_) => false,
        Node::Var(..) => true,
        Node::Neg(a) | Node::Call(_, a) => has_var(a),
        Node::Bin(_, a, b) | Node::Min(a, b) | Node::Max(a, b) => has_var(a) || has_var(b),
    }
}

struct Compiler<'a> {
    vars: &'a [&'a str],
    ops: Vec<Op>,
    consts: Vec<Constant>,
}

impl Compiler<'_> {
    fn push_const(&mut self, c: Constant) -> Result<u16, CompileError> {
        let i = u16::try_from(self.consts.len())
            .map_err(|_| CompileError::TooLarge(self.consts.len()))?;
        self.consts.push(c);
        Ok(i)
    }

    /// Compile a variable-free subtree into its own program and evaluate it in f64 and in
    /// certified intervals.
    fn fold(&mut self, n: &Node) -> Result<Constant, CompileError> {
        let mut sub = Compiler {
            vars: self.vars,
            ops: Vec::new(),
            consts: Vec::new(),
        };
        sub.emit(n, false)?;
        let p = Program {
            ops: sub.ops,
            consts: sub.consts,
        };
        Ok(Constant {
            value: p.eval::<f64, Certified>(&[]),
            iv: p.eval::<Interval, Certified>(&[]),
        })
    }

    fn emit(&mut self, n: &Node, fold: bool) -> Result<(), CompileError> {
        if fold && !has_var(n) && !matches!(n, Node::Num { .. } | Node::Const(_)) {
            let c = self.fold(n)?;
            let i = self.push_const(c)?;
            self.ops.push(Op::Const(i));
            return Ok(());
        }
        match n {
            Node::Num { value, exact } => {
                let i = self.push_const(Constant {
                    value: *value,
                    iv: literal(*value, *exact),
                })?;
                self.ops.push(Op::Const(i));
            }
            Node::Const(c) => {
                let i = self.push_const(named(*c))?;
                self.ops.push(Op::Const(i));
            }
            Node::Var(name, col) => match self.vars.iter().position(|v| v == name) {
                Some(k) => self.ops.push(Op::Var(k as u8)),
                None => return Err(CompileError::UnknownVariable(name.clone(), *col)),
            },
            Node::Neg(a) => {
                self.emit(a, fold)?;
                self.ops.push(Op::Neg);
            }
            Node::Call(f, a) => {
                self.emit(a, fold)?;
                self.ops.push(Op::Call(*f));
            }
            Node::Min(a, b) | Node::Max(a, b) => {
                self.emit(a, fold)?;
                self.emit(b, fold)?;
                self.ops.push(if matches!(n, Node::Min(..)) {
                    Op::Min
                } else {
                    Op::Max
                });
            }
            Node::Bin(BinOp::Pow, a, b) if !has_var(b) => {
                self.emit(a, fold)?;
                let c = self.fold(b)?;
                if c.value.fract() == 0.0 && c.value.abs() <= i32::MAX as f64 {
                    // An integer exponent: x^n is defined for negative x too.
                    self.ops.push(Op::Powi(c.value as i32));
                } else {
                    let i = self.push_const(c)?;
                    self.ops.push(Op::PowC(i));
                }
            }
            Node::Bin(op, a, b) => {
                self.emit(a, fold)?;
                self.emit(b, fold)?;
                self.ops.push(match op {
                    BinOp::Add => Op::Add,
                    BinOp::Sub => Op::Sub,
                    BinOp::Mul => Op::Mul,
                    BinOp::Div => Op::Div,
                    BinOp::Pow => Op::Pow,
                });
            }
        }
        Ok(())
    }
}

impl Program {
    /// Compile `node`; variable names are looked up in `vars` (index = coordinate).
    pub fn compile(node: &Node, vars: &[&str]) -> Result<Program, CompileError> {
        let mut c = Compiler {
            vars,
            ops: Vec::new(),
            consts: Vec::new(),
        };
        c.emit(node, true)?;
        let p = Program {
            ops: c.ops,
            consts: c.consts,
        };
        if p.ops.len() > MAX_OPS {
            return Err(CompileError::TooLarge(p.ops.len()));
        }
        let depth = p.stack_depth();
        if depth > MAX_STACK {
            return Err(CompileError::TooDeep(depth));
        }
        Ok(p)
    }

    fn stack_depth(&self) -> usize {
        let (mut sp, mut max) = (0usize, 0usize);
        for op in &self.ops {
            match op {
                Op::Const(_) | Op::Var(_) => sp += 1,
                Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow | Op::Min | Op::Max => sp -= 1,
                _ => {}
            }
            max = max.max(sp);
        }
        max
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// How many elementary function applications the program makes (the costly part of a
    /// certified enclosure).
    pub fn elementary_ops(&self) -> usize {
        self.ops
            .iter()
            .filter(|op| matches!(op, Op::Call(_) | Op::PowC(_) | Op::Pow))
            .count()
    }

    /// The coordinates the expression reads (constant folding removed the rest).
    pub fn reads(&self, dim: usize) -> Vec<usize> {
        (0..dim)
            .filter(|&k| {
                self.ops
                    .iter()
                    .any(|op| matches!(op, Op::Var(v) if *v as usize == k))
            })
            .collect()
    }

    /// Evaluate with `vars[k]` for coordinate k (vars must cover every coordinate used).
    pub fn eval<T: Scalar, D: Directed>(&self, vars: &[T]) -> T {
        let mut st = [T::zero(); MAX_STACK];
        let mut sp = 0usize;
        for op in &self.ops {
            match *op {
                Op::Const(i) => {
                    st[sp] = T::constant(&self.consts[i as usize]);
                    sp += 1;
                }
                Op::Var(k) => {
                    st[sp] = vars[k as usize];
                    sp += 1;
                }
                Op::Neg => st[sp - 1] = st[sp - 1].neg(),
                Op::Powi(n) => st[sp - 1] = st[sp - 1].powi(n),
                Op::PowC(i) => st[sp - 1] = st[sp - 1].powc::<D>(&self.consts[i as usize]),
                Op::Call(f) => st[sp - 1] = st[sp - 1].call::<D>(f),
                binary => {
                    sp -= 1;
                    let (a, b) = (st[sp - 1], st[sp]);
                    st[sp - 1] = match binary {
                        Op::Add => a.add(b),
                        Op::Sub => a.sub(b),
                        Op::Mul => a.mul(b),
                        Op::Div => a.div(b),
                        Op::Pow => a.pow::<D>(b),
                        Op::Min => a.min(b),
                        Op::Max => a.max(b),
                        _ => unreachable!("unary ops handled above"),
                    };
                }
            }
        }
        st[0]
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;
    use crate::interval::Guard;

    fn f64_of(text: &str, x: &[f64]) -> f64 {
        let p = Program::compile(&parse(text).unwrap(), &["x", "y", "z"]).unwrap();
        p.eval::<f64, Guard>(x)
    }

    #[test]
    fn precedence_table() {
        // (expression, x, hand-derived value)
        let cases: &[(&str, f64, f64)] = &[
            ("-x^2", 3.0, -9.0),
            ("(-x)^2", 3.0, 9.0),
            ("2^3^2", 0.0, 512.0),
            ("(2^3)^2", 0.0, 64.0),
            ("2^-1", 0.0, 0.5),
            ("-2^-2", 0.0, -0.25),
            ("2**3", 0.0, 8.0),
            ("x**2**2", 2.0, 16.0),
            ("1 - 2 - 3", 0.0, -4.0),
            ("8 / 4 / 2", 0.0, 1.0),
            ("8 / 4 * 2", 0.0, 4.0),
            ("2 + 3 * 4", 0.0, 14.0),
            ("-3 * -2", 0.0, 6.0),
            ("--x", 5.0, 5.0),
            ("+x", 5.0, 5.0),
            ("1e-3", 0.0, 1e-3),
            ("2.5E+2", 0.0, 250.0),
            (".5", 0.0, 0.5),
            ("3.", 0.0, 3.0),
            ("exp(-x^2)", 1.0, (-1.0f64).exp()),
            ("-x^2 + 1", 2.0, -3.0),
            ("2*-x", 1.0, -2.0),
            ("x^-2", 2.0, 0.25),
            ("-(x-1)^3", 3.0, -8.0),
            ("e^2", 0.0, std::f64::consts::E.powf(2.0)),
            ("pi/2", 0.0, std::f64::consts::FRAC_PI_2),
            ("min(x, 2) + max(x, 2)", 5.0, 7.0),
            ("pow(2, 10)", 0.0, 1024.0),
            ("sign(x - 1) * abs(x - 1)", 0.5, -0.5),
            ("tau", 0.0, std::f64::consts::TAU),
        ];
        for &(text, x, want) in cases {
            let got = f64_of(text, &[x]);
            assert!(
                (got - want).abs() <= 1e-15 * want.abs().max(1.0),
                "{text} at x = {x}: {got} != {want}"
            );
        }
    }

    #[test]
    fn exactness_of_literals() {
        for (lit, exact) in [
            ("0.5", true),
            ("0.25", true),
            ("3", true),
            ("1e3", true),
            ("0.1", false),
            ("0.3", false),
            ("1e-3", false),
            ("12345678901234567890", false),
            ("0.0", true),
            ("2.5e-1", true),
        ] {
            match parse(lit).unwrap() {
                Node::Num { exact: e, .. } => assert_eq!(e, exact, "{lit}"),
                n => panic!("{lit}: {n:?}"),
            }
        }
    }

    #[test]
    fn folded_constants_enclose_the_real_value() {
        let p = Program::compile(&parse("2*pi").unwrap(), &[]).unwrap();
        let c = p.eval::<Interval, Certified>(&[]);
        // 2 pi = 6.283185307179586476925...
        // The f64 TAU is below 2 pi; its successor is above.
        assert!(c.inf() <= std::f64::consts::TAU && c.sup() >= std::f64::consts::TAU.next_up());
        assert!(c.wid() < 1e-14);
        let p = Program::compile(&parse("0.1*10").unwrap(), &[]).unwrap();
        let c = p.eval::<Interval, Certified>(&[]);
        assert!(c.contains(1.0) && c.wid() > 0.0);
        assert!(
            Program::compile(&parse("x^2").unwrap(), &["x"])
                .unwrap()
                .ops
                .iter()
                .any(|o| matches!(o, Op::Powi(2)))
        );
    }

    #[test]
    fn errors_point_at_the_column() {
        let e = parse("x+*2").unwrap_err();
        assert_eq!(e.column, 3);
        assert!(e.message.contains("'*'"), "{e:?}");
        let e = parse("sin(2*pi*x").unwrap_err();
        assert!(
            e.message.contains("expected ')'") && e.column == 11,
            "{e:?}"
        );
        assert_eq!(parse("2x").unwrap_err().column, 2);
        assert_eq!(parse("1e").unwrap_err().column, 1);
        assert_eq!(parse("x # 2").unwrap_err().column, 3);
        assert_eq!(parse("(x))").unwrap_err().column, 4);
        assert!(
            parse("foo(x)")
                .unwrap_err()
                .message
                .contains("unknown function")
        );
        assert!(parse("min(x)").unwrap_err().message.contains("2 arguments"));
        assert!(parse("sin x").unwrap_err().message.contains("parentheses"));
        assert!(parse("").is_err() && parse("   ").is_err());
        let deep = format!("{}x{}", "(".repeat(500), ")".repeat(500));
        assert!(parse(&deep).unwrap_err().message.contains("nests"));
        let e = Program::compile(&parse("x*w").unwrap(), &["x", "y"]).unwrap_err();
        assert_eq!(e, CompileError::UnknownVariable("w".into(), 3));
    }
}
