//! The expression grammar, with standard mathematical precedence:
//!
//! ```text
//! expr   := term (('+' | '-') term)*
//! term   := unary (('*' | '/') unary)*
//! unary  := ('-' | '+') unary | power
//! power  := atom [('^' | '**') unary]        right-associative; the exponent may be signed
//! atom   := number | name | name '(' expr {',' expr} ')' | '(' expr ')'
//! number := digits ['.' [digits]] [exponent] | '.' digits [exponent]
//! exponent := ('e' | 'E') ['+' | '-'] digits
//! ```
//!
//! So `-x^2` is -(x^2), `2^3^2` is 2^9 = 512, `2^-1` is 0.5, `a/b*c` is (a/b)*c, and `1e-3` is a
//! number. Names are variables (x, y, z), constants (pi, e, tau, π) or functions (followed by
//! `(`). Errors carry the 1-based column (in characters) of the offending token.

use crate::interval::elementary::Func;

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// A literal: its nearest f64 and whether that is exactly the literal's value.
    Num {
        value: f64,
        exact: bool,
    },
    Const(NamedConst),
    /// A variable name and its column.
    Var(String, usize),
    Neg(Box<Node>),
    Bin(BinOp, Box<Node>, Box<Node>),
    Call(Func, Box<Node>),
    Min(Box<Node>, Box<Node>),
    Max(Box<Node>, Box<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedConst {
    Pi,
    E,
    Tau,
}

/// A syntax error at a 1-based character column.
#[derive(Clone, Debug, PartialEq)]
pub struct ParseError {
    pub column: usize,
    pub message: String,
}

/// Names of the constants and the two-argument functions (the unary ones are [`Func::ALL`]).
pub const CONSTANTS: [(&str, NamedConst); 4] = [
    ("pi", NamedConst::Pi),
    ("π", NamedConst::Pi),
    ("e", NamedConst::E),
    ("tau", NamedConst::Tau),
];
pub const BINARY_FUNCTIONS: [&str; 3] = ["min", "max", "pow"];

/// Deepest nesting of parentheses, calls and unary signs accepted (the parser recurses).
const MAX_NESTING: usize = 200;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64, bool),
    Name(String),
    Op(char),
    Open,
    Close,
    Comma,
    End,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(v, _) => format!("the number {v}"),
        Tok::Name(n) => format!("'{n}'"),
        Tok::Op(c) => format!("'{c}'"),
        Tok::Open => "'('".into(),
        Tok::Close => "')'".into(),
        Tok::Comma => "','".into(),
        Tok::End => "the end of the expression".into(),
    }
}

fn err(column: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        column,
        message: message.into(),
    }
}

/// Whether the decimal `mantissa * 10^exp10` (mantissa an integer) is exactly an f64.
fn decimal_is_exact(mantissa: u128, exp10: i32, value: f64) -> bool {
    if !value.is_finite() {
        return false;
    }
    if mantissa == 0 {
        return true;
    }
    // value = m * 10^e exactly iff it is a dyadic rational with <= 53 significant bits: for
    // e >= 0 an integer below 2^53; for e < 0, 5^-e must divide m and m / 5^-e odd part
    // must fit in 53 bits (the 2^-e part is an exponent shift).
    if exp10 >= 0 {
        let Some(p) = 10u128.checked_pow(exp10 as u32) else {
            return false;
        };
        return mantissa
            .checked_mul(p)
            .is_some_and(|n| n < (1u128 << 53) && n as f64 == value);
    }
    let k = (-exp10) as u32;
    let Some(p5) = 5u128.checked_pow(k) else {
        return false;
    };
    if !mantissa.is_multiple_of(p5) {
        return false;
    }
    let odd = mantissa / p5;
    let odd = odd >> odd.trailing_zeros();
    odd < (1u128 << 53)
}

/// Split `text` into tokens with their 1-based columns.
fn tokenize(text: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            let mut digits = String::new();
            let mut exp10: i32 = 0;
            while i < chars.len() && chars[i].is_ascii_digit() {
                digits.push(chars[i]);
                i += 1;
            }
            if i < chars.len() && chars[i] == '.' {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    digits.push(chars[i]);
                    exp10 -= 1;
                    i += 1;
                }
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                // An exponent only if digits follow (optionally signed); otherwise 'e' starts
                // a name and the error below says so.
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    let neg = chars[i + 1] == '-';
                    let mut e: i64 = 0;
                    while j < chars.len() && chars[j].is_ascii_digit() {
                        e = (e * 10 + chars[j].to_digit(10).unwrap() as i64).min(100_000);
                        j += 1;
                    }
                    exp10 = exp10.saturating_add(if neg { -e as i32 } else { e as i32 });
                    i = j;
                } else {
                    let lit: String = chars[start..=i].iter().collect();
                    return Err(err(
                        col,
                        format!("malformed number '{lit}': an exponent needs digits, as in 1e-3"),
                    ));
                }
            }
            let lit: String = chars[start..i].iter().collect();
            if i < chars.len() && (chars[i] == '.' || chars[i].is_alphanumeric()) {
                let next: String = chars[i..]
                    .iter()
                    .take_while(|c| c.is_alphanumeric() || **c == '.')
                    .collect();
                return Err(err(
                    i + 1,
                    format!(
                        "unexpected '{next}' right after the number {lit} (write a product with \
                         '*', e.g. 2*x)"
                    ),
                ));
            }
            let value: f64 = lit
                .parse()
                .map_err(|_| err(col, format!("malformed number '{lit}'")))?;
            if !value.is_finite() {
                return Err(err(col, format!("the number {lit} overflows f64")));
            }
            let trimmed = digits.trim_start_matches('0');
            let exact = if trimmed.len() > 38 {
                false
            } else {
                let m: u128 = if trimmed.is_empty() {
                    0
                } else {
                    trimmed.parse().unwrap_or(u128::MAX)
                };
                decimal_is_exact(m, exp10, value)
            };
            out.push((Tok::Num(value, exact), col));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Name(chars[start..i].iter().collect()), col));
            continue;
        }
        let tok = match c {
            '+' | '-' | '/' | '^' => Tok::Op(c),
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                Tok::Op('^')
            }
            '*' => Tok::Op('*'),
            '(' => Tok::Open,
            ')' => Tok::Close,
            ',' => Tok::Comma,
            _ => {
                return Err(err(
                    col,
                    format!(
                        "unexpected character '{c}' (operators: + - * / ^ **, parentheses, \
                         commas between function arguments)"
                    ),
                ));
            }
        };
        out.push((tok, col));
        i += 1;
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn col(&self) -> usize {
        self.toks[self.pos].1
    }
    fn next(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(err(
                self.col(),
                format!("the expression nests more than {MAX_NESTING} levels deep"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Node, ParseError> {
        let mut lhs = self.term()?;
        while let Tok::Op(c @ ('+' | '-')) = *self.peek() {
            self.next();
            let rhs = self.term()?;
            let op = if c == '+' { BinOp::Add } else { BinOp::Sub };
            lhs = Node::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn term(&mut self) -> Result<Node, ParseError> {
        let mut lhs = self.unary()?;
        while let Tok::Op(c @ ('*' | '/')) = *self.peek() {
            self.next();
            let rhs = self.unary()?;
            let op = if c == '*' { BinOp::Mul } else { BinOp::Div };
            lhs = Node::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        if let Tok::Op(c @ ('+' | '-')) = *self.peek() {
            self.next();
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(if c == '-' {
                Node::Neg(Box::new(inner))
            } else {
                inner
            });
        }
        self.power()
    }

    fn power(&mut self) -> Result<Node, ParseError> {
        let base = self.atom()?;
        if let Tok::Op('^') = self.peek() {
            self.next();
            self.enter()?;
            let exponent = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Bin(BinOp::Pow, Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, ParseError> {
        let (tok, col) = self.next();
        match tok {
            Tok::Num(value, exact) => Ok(Node::Num { value, exact }),
            Tok::Open => {
                self.enter()?;
                let inner = self.expr()?;
                self.depth -= 1;
                self.expect_close(col)?;
                Ok(inner)
            }
            Tok::Name(name) => {
                if *self.peek() == Tok::Open {
                    self.call(name, col)
                } else if let Some((_, c)) = CONSTANTS.iter().find(|(n, _)| *n == name) {
                    Ok(Node::Const(*c))
                } else if Func::ALL.iter().any(|(n, _)| *n == name)
                    || BINARY_FUNCTIONS.contains(&name.as_str())
                {
                    Err(err(
                        col,
                        format!("the function '{name}' needs its argument in parentheses"),
                    ))
                } else {
                    Ok(Node::Var(name, col))
                }
            }
            other => Err(err(
                col,
                format!(
                    "expected a number, a name or '(' but found {}",
                    describe(&other)
                ),
            )),
        }
    }

    fn expect_close(&mut self, open_col: usize) -> Result<(), ParseError> {
        let (tok, col) = self.next();
        if tok == Tok::Close {
            Ok(())
        } else {
            Err(err(
                col,
                format!(
                    "expected ')' to close the '(' at column {open_col}, found {}",
                    describe(&tok)
                ),
            ))
        }
    }

    fn call(&mut self, name: String, col: usize) -> Result<Node, ParseError> {
        let (_, open_col) = self.next(); // '('
        self.enter()?;
        let mut args = vec![self.expr()?];
        while *self.peek() == Tok::Comma {
            self.next();
            args.push(self.expr()?);
        }
        self.depth -= 1;
        self.expect_close(open_col)?;
        let arity = |n: usize| -> Result<(), ParseError> {
            if args.len() == n {
                Ok(())
            } else {
                Err(err(
                    col,
                    format!(
                        "'{name}' takes {n} argument{}, found {}",
                        if n == 1 { "" } else { "s" },
                        args.len()
                    ),
                ))
            }
        };
        if let Some((_, f)) = Func::ALL.iter().find(|(n, _)| *n == name) {
            arity(1)?;
            return Ok(Node::Call(*f, Box::new(args.pop().unwrap())));
        }
        if BINARY_FUNCTIONS.contains(&name.as_str()) {
            arity(2)?;
            let b = Box::new(args.pop().unwrap());
            let a = Box::new(args.pop().unwrap());
            return Ok(match name.as_str() {
                "min" => Node::Min(a, b),
                "max" => Node::Max(a, b),
                _ => Node::Bin(BinOp::Pow, a, b),
            });
        }
        let names: Vec<&str> = Func::ALL
            .iter()
            .map(|(n, _)| *n)
            .chain(BINARY_FUNCTIONS)
            .collect();
        Err(err(
            col,
            format!(
                "unknown function '{name}' (functions: {})",
                names.join(", ")
            ),
        ))
    }
}

/// Parse `text` into a [`Node`].
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let toks = tokenize(text)?;
    if toks.len() == 1 {
        return Err(err(1, "empty expression"));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let node = p.expr()?;
    let (tok, col) = p.next();
    match tok {
        Tok::End => Ok(node),
        Tok::Close => Err(err(col, "unmatched ')'")),
        other => Err(err(
            col,
            format!(
                "unexpected {} after a complete expression (missing an operator?)",
                describe(&other)
            ),
        )),
    }
}

/// The tree with every variable v replaced by `lo + scale * v` (exact literals): the same
/// function read on the box \[lo, lo + scale\]^d through coordinates in \[0,1\]^d.
pub fn affine_vars(node: Node, lo: f64, scale: f64) -> Node {
    let go = |n: Box<Node>| Box::new(affine_vars(*n, lo, scale));
    match node {
        Node::Var(name, col) => Node::Bin(
            BinOp::Add,
            Box::new(Node::Num {
                value: lo,
                exact: true,
            }),
            Box::new(Node::Bin(
                BinOp::Mul,
                Box::new(Node::Num {
                    value: scale,
                    exact: true,
                }),
                Box::new(Node::Var(name, col)),
            )),
        ),
        Node::Neg(a) => Node::Neg(go(a)),
        Node::Bin(op, a, b) => Node::Bin(op, go(a), go(b)),
        Node::Call(f, a) => Node::Call(f, go(a)),
        Node::Min(a, b) => Node::Min(go(a), go(b)),
        Node::Max(a, b) => Node::Max(go(a), go(b)),
        leaf @ (Node::Num { .. } | Node::Const(_)) => leaf,
    }
}

/// The message with the expression and a caret under the column:
/// "message at column 5:\n  x + * 2\n      ^".
pub fn render(text: &str, e: &ParseError) -> String {
    let pad: String = " ".repeat(e.column.saturating_sub(1));
    format!("{} at column {}:\n  {text}\n  {pad}^", e.message, e.column)
}
