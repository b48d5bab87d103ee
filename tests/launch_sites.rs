//! Every kernel launch of `src/backend/cuda/**/*.rs` against the C parameter list of the kernels it
//! can launch, checked without a GPU. cudarc pushes each argument's bytes as they are, so a
//! launch whose arguments do not match the kernel's parameters would only show on a GPU, as
//! wrong numbers or a fault.
//!
//! Sites: every `launch!(gpu, "file", name, total; args...)` (the macro of
//! `src/backend/cuda/backend.rs`), and every `function("file", "kernel")` followed in its
//! function by a `launch_builder(..)` chain of `.arg(..)` calls up to `.launch(..)`. Comments are
//! blanked first, so text in a comment is never a site. Kernels: the `extern "C" __global__ void`
//! definitions in `g++ -E -P -x c++ -D__CUDACC_RTC__ -include kernels/common.cuh kernels/F.cu`
//! (the text NVRTC compiles, macros expanded).
//!
//! The name expression of a site denotes the kernels of its file whose names match it: a string
//! literal is itself; in a `format!` template each `{..}` stands for the values of its argument:
//! `X.suffix()` (a `Dtype`) is `f32`, `f16` or `bf16`; a `let` binding in scope is its value; a
//! `&str` parameter of the enclosing function is one of the string literals its callers pass (only
//! the callers whose `Option` argument agrees with the `Some(..)` / `None` arm of a `match` on
//! that parameter around the launch, when there is one); anything else is any non-empty text.
//!
//! Checked, for every site: its file is a kernel file and its name denotes at least one kernel;
//! the number of arguments equals the number of parameters of every kernel it denotes; and where
//! the kind of an argument follows from the source, the kinds agree: a device buffer (a path
//! ending in `.slice` or `.buf`, a half of `split_at_mut`, a `DeviceBuf` / `CudaSlice` /
//! `CudaView*` parameter, the device address `addr(..)`) goes to a pointer parameter, a scalar to
//! a non-pointer one, and a scalar whose Rust type follows from the source (`as T` casts, suffixed
//! literals, typed parameters, return types of the crate's functions, closures ending in a cast,
//! tuples and arrays of these, destructured) has the C parameter's type (u64 = unsigned long
//! long, i32 = int, u32 = unsigned int, u16 = unsigned short, f32 = float, f64 = double). Other
//! arguments are only counted (the test prints how many). Finally every kernel of
//! `KERNEL_NAMES` is launched by at least one site.
//!
//! The checker is a function of the source texts and the kernel signatures:
//! `checker_catches_deliberate_mismatches` runs it on a small source with known mistakes (no g++
//! needed), `checker_catches_mutated_launch_sites` on the real sources with one argument added,
//! removed or moved at each site in turn.
//!
//! Where g++ is missing the tests that need it print "skipped: g++ not found" and return.

mod gxx;
use gxx::{have_gxx, preprocess};
use mpno::backend::cuda::KERNEL_NAMES;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// Lexing

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// If a string, raw string or char literal starts at `i`, the index just past it.
fn skip_literal(b: &[u8], i: usize) -> Option<usize> {
    let prev_ident = i > 0 && is_ident(b[i - 1]);
    match b[i] {
        b'"' => {
            let mut j = i + 1;
            while j < b.len() {
                match b[j] {
                    b'\\' => j += 2,
                    b'"' => return Some(j + 1),
                    _ => j += 1,
                }
            }
            Some(b.len())
        }
        b'\'' => {
            if b.get(i + 1) == Some(&b'\\') {
                let mut j = i + 3;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                return Some(j + 1);
            }
            // A char literal 'x' (x possibly multi-byte), otherwise a lifetime.
            let lead = *b.get(i + 1)?;
            let len = match lead {
                0x00..=0x7f => 1,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            (b.get(i + 1 + len) == Some(&b'\'')).then_some(i + 2 + len)
        }
        b'r' if !prev_ident || (i > 0 && b[i - 1] == b'b' && (i < 2 || !is_ident(b[i - 2]))) => {
            let mut j = i + 1;
            while b.get(j) == Some(&b'#') {
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                return None;
            }
            let hashes = j - i - 1;
            let mut k = j + 1;
            while k < b.len() {
                if b[k] == b'"' && b[k + 1..].iter().take_while(|&&c| c == b'#').count() >= hashes {
                    return Some(k + 1 + hashes);
                }
                k += 1;
            }
            Some(b.len())
        }
        _ => None,
    }
}

/// `src` with every comment replaced by spaces (newlines kept): offsets and line numbers stay.
fn blank_comments(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        if let Some(j) = skip_literal(b, i) {
            i = j;
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out[i] = b' ';
                i += 1;
            }
        } else if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out[i] = b' ';
                    out[i + 1] = b' ';
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] != b'\n' {
                        out[i] = b' ';
                    }
                    i += 1;
                }
            }
        } else {
            i += 1;
        }
    }
    // Whole comments (which start and end at ASCII bytes) became spaces: still UTF-8.
    String::from_utf8(out).unwrap()
}

fn opens(c: u8) -> bool {
    matches!(c, b'(' | b'[' | b'{')
}

fn closes(c: u8) -> bool {
    matches!(c, b')' | b']' | b'}')
}

/// Walk `b[from..to]` outside literals: `visit(i, b[i], depth)` sees each byte with the
/// bracket depth (all of `()[]{}` nest, counted from 0 at `from`) before that byte, and stops
/// the walk by returning true. The index where it stopped, or `to`.
fn walk(b: &[u8], from: usize, to: usize, mut visit: impl FnMut(usize, u8, i32) -> bool) -> usize {
    let (mut depth, mut i) = (0i32, from);
    while i < to {
        if let Some(j) = skip_literal(b, i) {
            i = j;
            continue;
        }
        if visit(i, b[i], depth) {
            return i;
        }
        if opens(b[i]) {
            depth += 1;
        } else if closes(b[i]) {
            depth -= 1;
        }
        i += 1;
    }
    to
}

/// The index of the bracket closing the one at `open` (all of `()[]{}` nest), or the end.
fn close(b: &[u8], open: usize) -> usize {
    walk(b, open, b.len(), |_, c, depth| closes(c) && depth == 1)
}

/// Offsets of the `sep` bytes of `s` outside brackets and literals.
fn top_level(s: &str, sep: u8) -> Vec<usize> {
    let mut out = Vec::new();
    walk(s.as_bytes(), 0, s.len(), |i, c, depth| {
        if c == sep && depth == 0 {
            out.push(i);
        }
        false
    });
    out
}

/// `s` split at the `sep` bytes outside brackets and literals (pieces trimmed; a last empty
/// piece, as after a trailing comma, dropped; nothing for blank text).
fn split_top(s: &str, sep: u8) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for k in top_level(s, sep) {
        out.push(s[start..k].trim());
        start = k + 1;
    }
    let last = s[start..].trim();
    if !last.is_empty() {
        out.push(last);
    }
    out
}

/// Start offsets of `word` in `text` with no identifier character just before it (and none
/// after, when `word` ends in one).
fn find_word(text: &str, word: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let w = word.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = text[from..].find(word) {
        let at = from + k;
        let before = at == 0 || !is_ident(b[at - 1]);
        let end = at + w.len();
        let after = !is_ident(w[w.len() - 1]) || end >= b.len() || !is_ident(b[end]);
        if before && after {
            out.push(at);
        }
        from = at + 1;
    }
    out
}

fn line_of(text: &str, pos: usize) -> usize {
    text[..pos].bytes().filter(|&c| c == b'\n').count() + 1
}

fn is_ident_str(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(is_ident)
        && !s.as_bytes()[0].is_ascii_digit()
        && !matches!(s, "mut" | "ref" | "self" | "Self" | "true" | "false")
}

fn string_literal(s: &str) -> Option<String> {
    let s = s.trim();
    (s.len() >= 2 && s.starts_with('"') && s.ends_with('"') && !s[1..s.len() - 1].contains('"'))
        .then(|| s[1..s.len() - 1].to_string())
}

fn strip_refs(mut s: &str) -> &str {
    loop {
        let t = s.trim();
        let next = if let Some(r) = t.strip_prefix("&mut ") {
            r
        } else if let Some(r) = t.strip_prefix('&') {
            r
        } else if let Some(r) = t.strip_prefix('*') {
            r
        } else if let Some(r) = t.strip_prefix("mut ") {
            r
        } else if let Some(r) = t.strip_prefix("ref ") {
            r
        } else if t.starts_with('\'') {
            // A lifetime in a type: &'a T.
            t.find(' ').map_or("", |k| &t[k..])
        } else {
            return t;
        };
        s = next;
    }
}

// ---------------------------------------------------------------------------------------------
// Kernel signatures

#[derive(Clone, Debug)]
struct Param {
    /// The C type, `const` and `__restrict__` dropped, e.g. `float*`, `u64`, `unsigned int*`.
    ty: String,
    pointer: bool,
}

/// The `extern "C" __global__ void` kernels of preprocessed C++, with their parameters.
fn parse_kernels(pre: &str) -> BTreeMap<String, Vec<Param>> {
    let text = pre.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text.replace("void (", "void(").replace(" (", "(");
    let key = "extern \"C\" __global__ void ";
    let mut out = BTreeMap::new();
    let mut from = 0;
    while let Some(k) = text[from..].find(key) {
        let start = from + k + key.len();
        let open = start + text[start..].find('(').expect("kernel without (");
        let name = text[start..open].trim().to_string();
        assert!(is_ident_str(&name), "odd kernel name {name:?}");
        let end = close(text.as_bytes(), open);
        let params = split_top(&text[open + 1..end], b',')
            .into_iter()
            .filter(|p| *p != "void")
            .map(parse_param)
            .collect();
        assert!(
            out.insert(name.clone(), params).is_none(),
            "kernel {name} defined twice"
        );
        from = end;
    }
    out
}

fn parse_param(p: &str) -> Param {
    let spaced = p.replace('*', " * ").replace('&', " & ");
    let mut toks: Vec<&str> = spaced
        .split_whitespace()
        .filter(|t| !matches!(*t, "const" | "volatile" | "__restrict__" | "__restrict"))
        .collect();
    let mut array = false;
    if let Some(last) = toks.last().copied()
        && let Some(k) = last.find('[')
    {
        array = true;
        let name = &last[..k];
        toks.pop();
        if !name.is_empty() {
            toks.push(name);
        }
    }
    // The last token is the parameter's name when something precedes it and it is no `*`.
    if toks.len() >= 2 && is_ident_str(toks[toks.len() - 1]) {
        toks.pop();
    }
    let mut ty = toks.join(" ").replace(" *", "*").replace(" &", "&");
    if array {
        ty.push('*');
    }
    Param {
        pointer: ty.contains('*'),
        ty,
    }
}

/// The Rust primitive a scalar C parameter type takes, where known.
fn c_scalar(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "u64" | "unsigned long long" | "unsigned long long int" => "u64",
        "long long" | "long long int" => "i64",
        "int" | "signed" | "signed int" => "i32",
        "unsigned" | "unsigned int" => "u32",
        "unsigned short" | "unsigned short int" => "u16",
        "short" | "short int" => "i16",
        "float" => "f32",
        "double" => "f64",
        "bool" => "bool",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Rust sources

struct Source {
    /// Shown in messages, e.g. `backend.rs`.
    name: String,
    /// The text with comments blanked.
    text: String,
}

struct FnDef {
    src: usize,
    name: String,
    /// (pattern, type) of each parameter but `self`.
    params: Vec<(String, String)>,
    has_self: bool,
    ret: String,
    /// Offsets of the body's braces, where there is a body.
    body: Option<(usize, usize)>,
}

fn parse_fns(src: usize, text: &str) -> Vec<FnDef> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    for at in find_word(text, "fn") {
        let mut i = at + 2;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let name_start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        if i == name_start {
            continue; // `fn(` pointer types
        }
        let name = text[name_start..i].to_string();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) == Some(&b'<') {
            // Generics: angle brackets, `->` not closing.
            let mut depth = 0;
            while i < b.len() {
                match b[i] {
                    b'<' => depth += 1,
                    b'>' if b[i - 1] != b'-' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
        }
        if b.get(i) != Some(&b'(') {
            continue;
        }
        let pend = close(b, i);
        let mut params = Vec::new();
        let mut has_self = false;
        for p in split_top(&text[i + 1..pend], b',') {
            let p = p.trim();
            let bare = strip_refs(p);
            if bare == "self" || bare.starts_with("self:") || bare.starts_with("self :") {
                has_self = true;
                continue;
            }
            // The pattern ends at the first `:` outside brackets that is not part of `::`.
            let pb = p.as_bytes();
            let mut depth = 0;
            let mut colon = None;
            let mut k = 0;
            while k < pb.len() {
                match pb[k] {
                    b'(' | b'[' | b'{' | b'<' => depth += 1,
                    b')' | b']' | b'}' | b'>' => depth -= 1,
                    b':' if depth == 0 => {
                        if pb.get(k + 1) == Some(&b':') {
                            k += 2;
                            continue;
                        }
                        colon = Some(k);
                        break;
                    }
                    _ => {}
                }
                k += 1;
            }
            if let Some(c) = colon {
                params.push((p[..c].trim().to_string(), p[c + 1..].trim().to_string()));
            }
        }
        // Return type and body: up to the first `{` or `;` outside brackets.
        let mut k = pend + 1;
        let mut depth = 0i32;
        let mut body = None;
        while k < b.len() {
            match b[k] {
                b'(' | b'[' | b'<' => depth += 1,
                b')' | b']' => depth -= 1,
                b'>' if b[k - 1] != b'-' => depth -= 1,
                b'{' if depth <= 0 => {
                    body = Some((k, close(b, k)));
                    break;
                }
                b';' if depth <= 0 => break,
                _ => {}
            }
            k += 1;
        }
        let ret = text[pend + 1..k].trim();
        let ret = ret.strip_prefix("->").unwrap_or("").trim();
        let ret = ret.split(" where ").next().unwrap_or("").trim().to_string();
        out.push(FnDef {
            src,
            name,
            params,
            has_self,
            ret,
            body,
        });
    }
    out
}

/// A position in a source, inside a function, while resolving the launch site at `site`.
#[derive(Clone, Copy)]
struct Loc {
    src: usize,
    fun: usize,
    pos: usize,
    site: usize,
}

struct Let<'a> {
    pat: &'a str,
    rhs: &'a str,
    pos: usize,
}

#[derive(Clone, Debug, PartialEq)]
enum Ty {
    Buffer,
    Prim(String),
    Tuple(Vec<Option<Ty>>),
    Array(Box<Option<Ty>>),
}

const PRIMS: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32",
    "f64", "bool",
];
const BUFFER_TYPES: &[&str] = &["DeviceBuf", "CudaSlice", "CudaView"];
/// The values of `Dtype::suffix()`.
const SUFFIXES: &[&str] = &["f32", "f16", "bf16"];

/// A piece of a kernel-name template.
#[derive(Clone, Debug)]
enum Part {
    Lit(String),
    OneOf(Vec<String>),
    /// Any non-empty text.
    Any,
}

fn matches(parts: &[Part], name: &str) -> bool {
    match parts.split_first() {
        None => name.is_empty(),
        Some((Part::Lit(l), rest)) => name
            .strip_prefix(l.as_str())
            .is_some_and(|r| matches(rest, r)),
        Some((Part::OneOf(v), rest)) => v.iter().any(|l| {
            name.strip_prefix(l.as_str())
                .is_some_and(|r| matches(rest, r))
        }),
        Some((Part::Any, rest)) => (1..=name.len())
            .filter(|&k| name.is_char_boundary(k))
            .any(|k| matches(rest, &name[k..])),
    }
}

fn show(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Lit(l) => l.clone(),
            Part::OneOf(v) => format!("{{{}}}", v.join("|")),
            Part::Any => "{*}".to_string(),
        })
        .collect()
}

struct Crate {
    srcs: Vec<Source>,
    fns: Vec<FnDef>,
}

impl Crate {
    fn new(srcs: Vec<Source>) -> Crate {
        let fns = srcs
            .iter()
            .enumerate()
            .flat_map(|(i, s)| parse_fns(i, &s.text))
            .collect();
        Crate { srcs, fns }
    }

    fn text(&self, src: usize) -> &str {
        &self.srcs[src].text
    }

    /// The innermost function whose body holds `pos`.
    fn enclosing(&self, src: usize, pos: usize) -> Option<usize> {
        self.fns
            .iter()
            .enumerate()
            .filter(|(_, f)| f.src == src && f.body.is_some_and(|(a, z)| a < pos && pos < z))
            .max_by_key(|(_, f)| f.body.unwrap().0)
            .map(|(i, _)| i)
    }

    /// The `let` statements of the function at `loc` before `loc.pos` still in scope there,
    /// last first.
    fn lets(&self, loc: Loc) -> Vec<Let<'_>> {
        let text = self.text(loc.src);
        let b = text.as_bytes();
        let (body, _) = self.fns[loc.fun].body.unwrap();
        let mut out = Vec::new();
        for at in find_word(&text[..loc.pos], "let") {
            if at <= body {
                continue;
            }
            // In scope: no block closes between the `let` and the position.
            if walk(b, at, loc.pos, |_, c, depth| closes(c) && depth == 0) < loc.pos {
                continue;
            }
            let before = text[..at].trim_end();
            let conditional = before.ends_with("if") || before.ends_with("while");
            // Pattern up to `=` (or a `:` type annotation) outside brackets.
            let mut i = at + 3;
            let mut depth = 0i32;
            let mut pat_end = None;
            let mut eq = None;
            while i < loc.pos {
                match b[i] {
                    b'(' | b'[' | b'{' | b'<' => depth += 1,
                    b')' | b']' | b'}' | b'>' => depth -= 1,
                    b':' if depth == 0 && b.get(i + 1) != Some(&b':') && b[i - 1] != b':' => {
                        pat_end.get_or_insert(i);
                    }
                    b'=' if depth == 0
                        && !matches!(b.get(i + 1), Some(b'=') | Some(b'>'))
                        && !matches!(b[i - 1], b'=' | b'!' | b'<' | b'>') =>
                    {
                        eq = Some(i);
                        break;
                    }
                    b';' => break,
                    _ => {}
                }
                i += 1;
            }
            let Some(eq) = eq else { continue };
            let pat = text[at + 3..pat_end.unwrap_or(eq)].trim();
            // Value up to `;` outside brackets (or `{` after `if let` / `while let`, or `else`
            // of a let-else).
            let i = walk(b, eq + 1, b.len(), |i, c, depth| {
                depth == 0
                    && match c {
                        b'{' => conditional,
                        b';' => true,
                        b'e' => {
                            text[i..].starts_with("else")
                                && !is_ident(b[i - 1])
                                && !b.get(i + 4).is_some_and(|&c| is_ident(c))
                        }
                        c => closes(c),
                    }
            });
            out.push(Let {
                pat,
                rhs: text[eq + 1..i].trim(),
                pos: at,
            });
        }
        out.reverse();
        out
    }

    // --- kernel names ---

    /// The kernel names `expr` (a site's name argument, or a piece of it) can denote.
    fn name_parts(&self, loc: Loc, expr: &str, depth: usize) -> Vec<Part> {
        let e = strip_refs(expr);
        if depth > 8 {
            return vec![Part::Any];
        }
        if let Some(s) = string_literal(e) {
            return vec![Part::Lit(s)];
        }
        if let Some(inner) = e.strip_prefix("format!(").and_then(|r| r.strip_suffix(')')) {
            return self.format_parts(loc, inner, depth);
        }
        if e.ends_with(".suffix()") {
            return vec![Part::OneOf(
                SUFFIXES.iter().map(|s| s.to_string()).collect(),
            )];
        }
        if let Some(r) = e.strip_suffix(".to_string()") {
            return self.name_parts(loc, r, depth + 1);
        }
        if is_ident_str(e) {
            if let Some(l) = self.lets(loc).into_iter().find(|l| strip_refs(l.pat) == e) {
                let at = Loc { pos: l.pos, ..loc };
                return self.name_parts(at, l.rhs, depth + 1);
            }
            if let Some(v) = self.param_values(loc, e) {
                return vec![Part::OneOf(v)];
            }
        }
        vec![Part::Any]
    }

    fn format_parts(&self, loc: Loc, inner: &str, depth: usize) -> Vec<Part> {
        let args = split_top(inner, b',');
        let Some(template) = args.first().and_then(|t| string_literal(t)) else {
            return vec![Part::Any];
        };
        let named = |n: &str| {
            args[1..].iter().find_map(|a| {
                let (k, v) = a.split_once('=')?;
                (k.trim() == n && !v.starts_with('=')).then_some(v.trim())
            })
        };
        let positional: Vec<&str> = args[1..]
            .iter()
            .filter(|a| {
                a.split_once('=')
                    .is_none_or(|(k, v)| !is_ident_str(k.trim()) || v.starts_with('='))
            })
            .copied()
            .collect();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut next = 0;
        let t = template.as_str();
        let mut i = 0;
        while i < t.len() {
            let rest = &t[i..];
            if rest.starts_with("{{") || rest.starts_with("}}") {
                lit.push_str(&rest[..1]);
                i += 2;
            } else if rest.starts_with('{') {
                let end = rest.find('}').map_or(t.len(), |k| i + k);
                let spec = &t[i + 1..end];
                let arg = spec.split(':').next().unwrap_or("").trim();
                let value = if arg.is_empty() {
                    next += 1;
                    positional.get(next - 1).copied()
                } else if let Ok(k) = arg.parse::<usize>() {
                    positional.get(k).copied()
                } else {
                    Some(named(arg).unwrap_or(arg))
                };
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                match value {
                    Some(v) => parts.extend(self.name_parts(loc, v, depth + 1)),
                    None => parts.push(Part::Any),
                }
                i = end + 1;
            } else {
                let c = rest.chars().next().unwrap();
                lit.push(c);
                i += c.len_utf8();
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        parts
    }

    /// The string literals the callers of the function at `loc` pass as its parameter `ident`
    /// (`None` unless it is a parameter, has callers, and all pass literals). Only the callers
    /// whose `Option` argument agrees with the `Some(..)` / `None` arm of a `match` on a
    /// parameter around the launch site, when there is one.
    fn param_values(&self, loc: Loc, ident: &str) -> Option<Vec<String>> {
        let f = &self.fns[loc.fun];
        let k = f.params.iter().position(|(p, _)| strip_refs(p) == ident)?;
        let arm = self.option_arm(loc);
        let mut values = BTreeSet::new();
        for s in &self.srcs {
            let b = s.text.as_bytes();
            for at in find_word(&s.text, &format!("{}(", f.name)) {
                let before = s.text[..at].trim_end();
                if before.ends_with("fn") {
                    continue;
                }
                let method = before.ends_with('.');
                if method != f.has_self && !before.ends_with("::") {
                    continue;
                }
                let open = at + f.name.len();
                let args = split_top(&s.text[open + 1..close(b, open)], b',');
                let args = if !method && f.has_self && args.len() == f.params.len() + 1 {
                    args[1..].to_vec() // Self::f(self, ..)
                } else {
                    args
                };
                if args.len() != f.params.len() {
                    continue; // another function of the same name
                }
                if let Some((j, some)) = arm {
                    let a = args[j].trim();
                    if (some && !a.starts_with("Some(")) || (!some && a != "None") {
                        continue;
                    }
                }
                values.insert(string_literal(args[k])?);
            }
        }
        (!values.is_empty()).then(|| values.into_iter().collect())
    }

    /// (parameter index, whether `Some`) when the launch site is in the `Some(..)` or `None`
    /// arm of a `match` on a parameter of its function.
    fn option_arm(&self, loc: Loc) -> Option<(usize, bool)> {
        let text = self.text(loc.src);
        let b = text.as_bytes();
        let f = &self.fns[loc.fun];
        let (body, _) = f.body?;
        let mut best: Option<(usize, usize, &str)> = None;
        for at in find_word(&text[..loc.site], "match") {
            if at <= body {
                continue;
            }
            let open = at + text[at..].find('{')?;
            let end = close(b, open);
            if open < loc.site && loc.site < end && best.is_none_or(|(o, _, _)| open > o) {
                best = Some((open, end, text[at + 5..open].trim()));
            }
        }
        let (open, _, scrutinee) = best?;
        let j = f
            .params
            .iter()
            .position(|(p, _)| strip_refs(p) == scrutinee)?;
        // The arm: the last `=>` at the match's top level before the position.
        let mut start = open + 1;
        let mut pat = None;
        walk(b, open + 1, loc.site, |i, c, depth| {
            match c {
                b'}' if depth == 1 => start = i + 1,
                b',' if depth == 0 => start = i + 1,
                b'=' if depth == 0 && b.get(i + 1) == Some(&b'>') => {
                    pat = Some(text[start..i].trim());
                }
                _ => {}
            }
            false
        });
        let pat = pat?;
        if pat == "None" {
            Some((j, false))
        } else if pat.starts_with("Some(") {
            Some((j, true))
        } else {
            None
        }
    }

    // --- argument types ---

    /// What `expr` at `loc` is, where that follows from the source.
    fn infer(&self, loc: Loc, expr: &str, depth: usize) -> Option<Ty> {
        if depth > 10 {
            return None;
        }
        let e = strip_refs(expr);
        let e = e.strip_suffix('?').unwrap_or(e).trim();
        if e.is_empty() {
            return None;
        }
        let b = e.as_bytes();
        // A field path ending in the device buffer: `x.buf`, `ff[0].buf.slice`.
        let path = b
            .iter()
            .all(|&c| is_ident(c) || matches!(c, b'.' | b'[' | b']'));
        if path && (e.ends_with(".slice") || e.ends_with(".buf")) {
            return Some(Ty::Buffer);
        }
        // A cast (arithmetic on primitives keeps one type, so a cast at the end types it all).
        let tops = split_top(e, b' ');
        if tops.len() >= 3 && tops[tops.len() - 2] == "as" {
            let t = tops[tops.len() - 1];
            let logical = tops.iter().any(|w| {
                matches!(
                    *w,
                    "==" | "!=" | "<" | ">" | "<=" | ">=" | "&&" | "||" | "<<" | ">>"
                ) || w.contains("..")
            });
            return (PRIMS.contains(&t) && !logical).then(|| Ty::Prim(t.to_string()));
        }
        if e.starts_with(|c: char| c.is_ascii_digit()) {
            // A literal: typed only by a suffix (`1u64`, `2.0f32`).
            let suffix = e.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == '_');
            return PRIMS
                .contains(&suffix)
                .then(|| Ty::Prim(suffix.to_string()));
        }
        // A tuple field: `t.0`.
        if let Some((x, n)) = e.rsplit_once('.')
            && let (Ok(n), true) = (n.parse::<usize>(), path)
        {
            return match self.infer(loc, x, depth + 1)? {
                Ty::Tuple(v) => v.get(n).cloned().flatten(),
                _ => None,
            };
        }
        if e == "true" || e == "false" {
            return Some(Ty::Prim("bool".into()));
        }
        if let Some(r) = e.strip_prefix('-') {
            return self.infer(loc, r, depth + 1);
        }
        let whole = |open: u8| b[0] == open && close(b, 0) == b.len() - 1;
        if whole(b'(') {
            let inner = &e[1..e.len() - 1];
            let items = split_top(inner, b',');
            if items.len() == 1 && !inner.trim_end().ends_with(',') {
                return self.infer(loc, items[0], depth + 1);
            }
            return Some(Ty::Tuple(
                items
                    .iter()
                    .map(|x| self.infer(loc, x, depth + 1))
                    .collect(),
            ));
        }
        if whole(b'[') {
            let inner = &e[1..e.len() - 1];
            let rep = split_top(inner, b';');
            let items = if rep.len() == 2 {
                vec![rep[0]]
            } else {
                split_top(inner, b',')
            };
            let tys: BTreeSet<String> = items
                .iter()
                .map(|x| format!("{:?}", self.infer(loc, x, depth + 1)))
                .collect();
            let first = items.first().and_then(|x| self.infer(loc, x, depth + 1));
            return Some(Ty::Array(Box::new(if tys.len() == 1 {
                first
            } else {
                None
            })));
        }
        if is_ident_str(e) {
            for l in self.lets(loc) {
                if find_word(l.pat, e).is_empty() {
                    continue;
                }
                let at = Loc { pos: l.pos, ..loc };
                let ty = self.infer(at, l.rhs, depth + 1);
                return destructure(l.pat, ty, e);
            }
            let f = &self.fns[loc.fun];
            for (p, t) in &f.params {
                if !find_word(p, e).is_empty() {
                    return destructure(p, rust_type(t), e);
                }
            }
            return None;
        }
        // Indexing: `dims[0]`.
        if e.ends_with(']') {
            let open = (0..b.len())
                .rev()
                .find(|&k| b[k] == b'[' && close(b, k) == b.len() - 1)?;
            return match self.infer(loc, &e[..open], depth + 1)? {
                Ty::Array(t) => *t,
                _ => None,
            };
        }
        // A call: `f(..)`, `x.f(..)`, `path::f(..)`, or a closure bound by `let`.
        if e.ends_with(')') {
            let open = (0..b.len())
                .rev()
                .find(|&k| b[k] == b'(' && close(b, k) == b.len() - 1)?;
            let callee = &e[..open];
            let name_start = callee
                .bytes()
                .rposition(|c| !is_ident(c))
                .map_or(0, |k| k + 1);
            let name = &callee[name_start..];
            if name.is_empty() {
                return None;
            }
            if callee == name
                && let Some(l) = self
                    .lets(loc)
                    .into_iter()
                    .find(|l| strip_refs(l.pat) == name)
            {
                let rhs = l.rhs.strip_prefix("move").unwrap_or(l.rhs).trim();
                if let Some(r) = rhs.strip_prefix('|') {
                    let body = &r[r.find('|')? + 1..];
                    return self.infer(Loc { pos: l.pos, ..loc }, body, depth + 1);
                }
                return None;
            }
            match name {
                "split_at_mut" => {
                    return Some(Ty::Tuple(vec![Some(Ty::Buffer), Some(Ty::Buffer)]));
                }
                // `Cuda::addr`: the device address of a buffer, passed for a pointer.
                "addr" => return Some(Ty::Buffer),
                _ => {}
            }
            let tys: BTreeSet<String> = self
                .fns
                .iter()
                .filter(|f| f.name == name)
                .map(|f| format!("{:?}", rust_type(&f.ret)))
                .collect();
            if tys.len() != 1 {
                return None;
            }
            return self
                .fns
                .iter()
                .find(|f| f.name == name)
                .and_then(|f| rust_type(&f.ret));
        }
        None
    }
}

/// The type of `ident` bound by `pat` to a value of type `ty`.
fn destructure(pat: &str, ty: Option<Ty>, ident: &str) -> Option<Ty> {
    let p = strip_refs(pat);
    if p == ident {
        return ty;
    }
    let bracketed =
        (p.starts_with('(') && p.ends_with(')')) || (p.starts_with('[') && p.ends_with(']'));
    if !bracketed {
        return None;
    }
    let (items, ty) = (split_top(&p[1..p.len() - 1], b','), ty?);
    let k = items.iter().position(|q| !find_word(q, ident).is_empty())?;
    match ty {
        Ty::Tuple(v) if v.len() == items.len() => destructure(items[k], v[k].clone(), ident),
        Ty::Array(t) => destructure(items[k], *t, ident),
        _ => None,
    }
}

/// What a value of the Rust type `t` is, where this test knows.
fn rust_type(t: &str) -> Option<Ty> {
    let t = strip_refs(t);
    if BUFFER_TYPES.iter().any(|b| t.contains(b)) && !t.starts_with('(') && !t.starts_with('[') {
        return Some(Ty::Buffer);
    }
    if let Some(inner) = t.strip_prefix("Result<").and_then(|r| r.strip_suffix('>')) {
        return rust_type(split_top(inner, b',').first()?);
    }
    if PRIMS.contains(&t) {
        return Some(Ty::Prim(t.to_string()));
    }
    let b = t.as_bytes();
    if t.starts_with('(') && close(b, 0) == b.len() - 1 {
        return Some(Ty::Tuple(
            split_top(&t[1..t.len() - 1], b',')
                .into_iter()
                .map(rust_type)
                .collect(),
        ));
    }
    if t.starts_with('[') && close(b, 0) == b.len() - 1 {
        let parts = split_top(&t[1..t.len() - 1], b';');
        return Some(Ty::Array(Box::new(rust_type(parts.first()?))));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The checker

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Buffer,
    Scalar(Option<String>),
    Unknown,
}

struct Site {
    /// `backend.rs:244`.
    at: String,
    line: usize,
    file: String,
    pattern: String,
    kernels: Vec<String>,
    args: Vec<(String, Kind)>,
}

/// Every `launch!` site of `text` (comments blanked): its start, the offset just past its `;`
/// and the offset of its closing parenthesis (where a test can edit the argument list).
fn launch_sites(text: &str) -> Vec<(usize, usize, usize)> {
    let b = text.as_bytes();
    find_word(text, "launch!(")
        .into_iter()
        .filter_map(|at| {
            let open = at + "launch!".len();
            let end = close(b, open);
            let semi = top_level(&text[open + 1..end], b';');
            (semi.len() == 1).then(|| (at, open + 1 + semi[0] + 1, end))
        })
        .collect()
}

/// Every launch site of `srcs` ((name, text) pairs) checked against `sigs` (per kernel file, the
/// parameters of each kernel), the kernels of each file being `names`: the sites, and one line
/// per problem.
fn check(
    srcs: &[(String, String)],
    sigs: &BTreeMap<String, BTreeMap<String, Vec<Param>>>,
    names: &[(&str, &[&str])],
) -> (Vec<Site>, Vec<String>) {
    let krate = Crate::new(
        srcs.iter()
            .map(|(n, t)| Source {
                name: n.clone(),
                text: blank_comments(t),
            })
            .collect(),
    );
    let mut sites = Vec::new();
    let mut problems = Vec::new();
    for (si, s) in krate.srcs.iter().enumerate() {
        let text = s.text.as_str();
        let b = text.as_bytes();
        // launch!(gpu, "file", name, total; args...)
        for at in find_word(text, "launch!(") {
            let line = line_of(text, at);
            let here = format!("{}:{line}", s.name);
            let open = at + "launch!".len();
            let inner = &text[open + 1..close(b, open)];
            let halves = split_top(inner, b';');
            let head = halves
                .first()
                .map(|h| split_top(h, b','))
                .unwrap_or_default();
            if halves.len() != 2 || head.len() != 4 {
                problems.push(format!(
                    "{here}: launch! is not `gpu, \"file\", name, total; args...`"
                ));
                continue;
            }
            let Some(fun) = krate.enclosing(si, at) else {
                problems.push(format!("{here}: launch! outside a function"));
                continue;
            };
            let loc = Loc {
                src: si,
                fun,
                pos: at,
                site: at,
            };
            let Some(file) = string_literal(head[1]) else {
                problems.push(format!("{here}: the kernel file is not a string literal"));
                continue;
            };
            let parts = krate.name_parts(loc, head[2], 0);
            let args = split_top(halves[1], b',');
            sites.push(site(&krate, loc, (here, line), file, &parts, &args, names));
        }
        // gpu.function("file", "kernel") ... launch_builder(..).arg(..)...launch(..)
        for at in find_word(text, "function(") {
            if !text[..at].ends_with('.') {
                continue;
            }
            let open = at + "function".len();
            let fargs = split_top(&text[open + 1..close(b, open)], b',');
            let (Some(file), Some(kernel)) = (
                fargs.first().and_then(|a| string_literal(a)),
                fargs.get(1).and_then(|a| string_literal(a)),
            ) else {
                continue;
            };
            let line = line_of(text, at);
            let here = format!("{}:{line}", s.name);
            let Some(fun) = krate.enclosing(si, at) else {
                continue;
            };
            let end = krate.fns[fun].body.unwrap().1;
            let Some(lb) = text[at..end].find("launch_builder(").map(|k| at + k) else {
                problems.push(format!(
                    "{here}: {kernel}: no launch_builder after function()"
                ));
                continue;
            };
            let chain_open = lb + "launch_builder".len();
            let mut i = close(b, chain_open) + 1;
            let mut args = Vec::new();
            loop {
                let rest = &text[i..end];
                let t = rest.trim_start();
                let skip = rest.len() - t.len();
                if t.starts_with(".arg(") {
                    let o = i + skip + ".arg".len();
                    let c = close(b, o);
                    args.push(text[o + 1..c].trim());
                    i = c + 1;
                } else {
                    break;
                }
            }
            if !text[i..end].trim_start().starts_with(".launch(") {
                problems.push(format!(
                    "{here}: {kernel}: the .arg() chain does not end in .launch()"
                ));
                continue;
            }
            // The arguments are evaluated where the chain is: bindings before it count.
            let loc = Loc {
                src: si,
                fun,
                pos: lb,
                site: lb,
            };
            sites.push(site(
                &krate,
                loc,
                (here, line),
                file,
                &[Part::Lit(kernel)],
                &args,
                names,
            ));
        }
    }
    for site in &sites {
        if !names.iter().any(|(f, _)| *f == site.file) {
            problems.push(format!("{}: no kernel file {:?}", site.at, site.file));
            continue;
        }

        if site.kernels.is_empty() {
            problems.push(format!(
                "{}: kernel name {} denotes no kernel of {}.cu",
                site.at, site.pattern, site.file
            ));
        }
        for k in &site.kernels {
            let Some(params) = sigs.get(&site.file).and_then(|m| m.get(k)) else {
                problems.push(format!(
                    "{}: {k}: no definition in kernels/{}.cu",
                    site.at, site.file
                ));
                continue;
            };
            if params.len() != site.args.len() {
                problems.push(format!(
                    "{}: {k}: {} arguments, the kernel has {} parameters",
                    site.at,
                    site.args.len(),
                    params.len()
                ));
                continue;
            }
            for (i, ((text, kind), p)) in site.args.iter().zip(params).enumerate() {
                let n = i + 1;
                let bad = match kind {
                    Kind::Buffer if !p.pointer => {
                        Some("a device buffer for a non-pointer parameter".to_string())
                    }
                    Kind::Scalar(_) if p.pointer => Some("a scalar for a pointer parameter".into()),
                    Kind::Scalar(Some(t)) => c_scalar(&p.ty)
                        .filter(|c| c != t)
                        .map(|c| format!("Rust {t} for C {} ({c})", p.ty)),
                    _ => None,
                };
                if let Some(why) = bad {
                    problems.push(format!(
                        "{}: {k}: argument {n} `{text}`: {why} (parameter type {})",
                        site.at, p.ty
                    ));
                }
            }
        }
    }
    (sites, problems)
}

/// A site of `file` at (`name:line`, line) whose kernel name is `parts`, its arguments' kinds
/// inferred.
fn site(
    krate: &Crate,
    loc: Loc,
    (at, line): (String, usize),
    file: String,
    parts: &[Part],
    args: &[&str],
    names: &[(&str, &[&str])],
) -> Site {
    let kernels = names
        .iter()
        .filter(|(f, _)| *f == file)
        .flat_map(|(_, ks)| ks.iter())
        .filter(|k| matches(parts, k))
        .map(|k| k.to_string())
        .collect();
    let args = args
        .iter()
        .map(|a| {
            let kind = match krate.infer(loc, a, 0) {
                Some(Ty::Buffer) => Kind::Buffer,
                Some(Ty::Prim(t)) => Kind::Scalar(Some(t)),
                _ => Kind::Unknown,
            };
            (a.to_string(), kind)
        })
        .collect();
    Site {
        at,
        line,
        file,
        pattern: show(parts),
        kernels,
        args,
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs

/// `src/backend/cuda/**/*.rs`: (path below that folder, text), sorted.
fn cuda_sources() -> Vec<(String, String)> {
    let dir = root().join("src/backend/cuda");
    let mut out: Vec<(String, String)> = Vec::new();
    let mut folders = vec![dir.clone()];
    while let Some(folder) = folders.pop() {
        for p in std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
        {
            if p.is_dir() {
                folders.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let name = p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned();
                out.push((name, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The kernels of every file of `KERNEL_NAMES`, from g++'s preprocessed text.
fn kernel_sigs() -> &'static BTreeMap<String, BTreeMap<String, Vec<Param>>> {
    static SIGS: OnceLock<BTreeMap<String, BTreeMap<String, Vec<Param>>>> = OnceLock::new();
    SIGS.get_or_init(|| {
        let k = root().join("kernels");
        KERNEL_NAMES
            .iter()
            .map(|(file, _)| {
                let text = preprocess(&k, file);
                (file.to_string(), parse_kernels(&text))
            })
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn launch_sites_match_the_kernels() {
    if !have_gxx() {
        return;
    }
    let sigs = kernel_sigs();
    // The preprocessed definitions are the listed kernels.
    for (file, names) in KERNEL_NAMES {
        let found: BTreeSet<&str> = sigs[*file].keys().map(|s| s.as_str()).collect();
        let listed: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(found, listed, "kernels/{file}.cu vs KERNEL_NAMES");
    }
    let srcs = cuda_sources();
    let (sites, problems) = check(&srcs, sigs, KERNEL_NAMES);
    let macro_sites: usize = srcs
        .iter()
        .map(|(_, t)| find_word(&blank_comments(t), "launch!(").len())
        .sum();
    assert!(macro_sites > 0, "no launch! site found");
    let (mut typed, mut kinded, mut total) = (0, 0, 0);
    for s in &sites {
        total += s.args.len();
        kinded += s.args.iter().filter(|(_, k)| *k != Kind::Unknown).count();
        typed += s
            .args
            .iter()
            .filter(|(_, k)| matches!(k, Kind::Buffer | Kind::Scalar(Some(_))))
            .count();
        let unknown: Vec<&str> = s
            .args
            .iter()
            .filter(|(_, k)| *k == Kind::Unknown)
            .map(|(a, _)| a.as_str())
            .collect();
        eprintln!(
            "{} {} ({} kernels): {} args{}",
            s.at,
            s.pattern,
            s.kernels.len(),
            s.args.len(),
            if unknown.is_empty() {
                String::new()
            } else {
                format!(", kind not inferred: {}", unknown.join(" "))
            }
        );
    }
    eprintln!(
        "{} sites ({macro_sites} launch!), {total} arguments: {kinded} of known kind, {typed} \
         buffers or scalars of known type",
        sites.len()
    );
    assert!(
        problems.is_empty(),
        "{} launch problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // Every kernel is launched somewhere.
    let launched: BTreeSet<&str> = sites
        .iter()
        .flat_map(|s| s.kernels.iter().map(|k| k.as_str()))
        .collect();
    let never: Vec<String> = KERNEL_NAMES
        .iter()
        .flat_map(|(f, ks)| ks.iter().map(move |k| (f, k)))
        .filter(|(_, k)| !launched.contains(**k))
        .map(|(f, k)| format!("{f}.cu: {k}"))
        .collect();
    assert!(
        never.is_empty(),
        "kernels no site in src/backend/cuda/**/*.rs launches:\n{}",
        never.join("\n")
    );
}

/// A made-up backend with one mistake of each kind, and correct sites of every shape the real
/// one uses (no g++ needed).
#[test]
fn checker_catches_deliberate_mismatches() {
    let kernels = r#"
typedef unsigned long long u64;
extern "C" __global__ void scale_f32(const float* x, float* y, u64 n, float a) { }
extern "C" __global__ void scale_f16(const unsigned short* x, unsigned short* y, u64 n,
                                     float a) { }
extern "C" __global__ void sum_f32(const float* x, u64 n, double* acc) { }
extern "C" __global__ void sum_f16(const unsigned short* x, u64 n, double* acc) { }
extern "C" __global__ void dot_f32(const float* a, const float* b, float* out, u64 n) { }
extern "C" __global__ void total_f32(const float* a, float* out, u64 n) { }
extern "C" __global__ void halves(double* a, double* b, u64 n, int d) { }
extern "C" __global__ void lonely(u64 n) { }
"#;
    let rust = r#"
impl Fake {
    fn reduce(&self, name: &str, a: &T, b: Option<&T>) -> R {
        let n64 = a.n as u64;
        let k = format!("{name}_{}", a.dtype.suffix());
        match b {
            Some(b) => launch!(self.gpu, "fake", k, n;
                &a.buf.slice, &b.buf.slice, &mut out.slice, &n64)?,
            None => launch!(self.gpu, "fake", k, n; &a.buf.slice, &mut out.slice, &n64,)?,
        }
    }
    fn callers(&self) {
        self.reduce("dot", &a, Some(&b));
        self.reduce("total", &a, None);
    }
    fn good(&self, x: &T, counter: &mut CudaViewMut<'_, u32>, s: &Scalars) {
        let n64 = x.n as u64;
        let a = 2.0f32;
        launch!(self.gpu, "fake", format!("scale_{}", x.dtype.suffix()), n;
            &x.buf.slice, &mut y.buf.slice, &n64, &a)?;
        let (mut lo, mut hi) = acc.slice.split_at_mut(n);
        let f = |v: f64| v as i32;
        let d = (f(s.d),);
        launch!(self.gpu, "fake", "halves", n; &mut lo, &mut hi, &dims()[1], &d.0)?;
    }
    fn bad(&self, x: &T) {
        let (n64, a) = (x.n as u64, 2.0 as f32);
        let m = 1.0f64;
        // launch!(self.gpu, "fake", "lonely", n; &n64) in a comment is no launch
        launch!(self.gpu, "fake", format!("scale_{}", x.dtype.suffix()), n;
            &x.buf.slice, &mut y.buf.slice, &n64, &a, &a)?;
        launch!(self.gpu, "fake", "sum_f32", n; &x.buf.slice, &mut acc.slice, &n64)?;
        launch!(self.gpu, "fake", "sum_f16", n; &x.buf.slice, &m, &mut acc.slice)?;
        launch!(self.gpu, "fake", "nope_f32", n; &n64)?;
        launch!(self.gpu, "nofile", "lonely", n; &n64)?;
    }
}
fn dims() -> [u64; 3] {
    [1, 2, 3]
}
"#;
    let names: &[(&str, &[&str])] = &[(
        "fake",
        &[
            "scale_f32",
            "scale_f16",
            "sum_f32",
            "sum_f16",
            "dot_f32",
            "total_f32",
            "halves",
            "lonely",
        ],
    )];
    let mut sigs = BTreeMap::new();
    sigs.insert("fake".to_string(), parse_kernels(kernels));
    assert_eq!(sigs["fake"].len(), 8);
    assert_eq!(sigs["fake"]["scale_f16"][1].ty, "unsigned short*");
    assert_eq!(sigs["fake"]["halves"][3].ty, "int");
    let (sites, problems) = check(&[("fake.rs".into(), rust.into())], &sigs, names);
    let line = |needle: &str| {
        rust.lines()
            .position(|l| l.contains(needle))
            .map(|k| k + 1)
            .unwrap()
    };
    let at = |needle: &str| format!("fake.rs:{}:", line(needle));
    // The correct sites: resolved, fully typed, no problem.

    let some = sites
        .iter()
        .find(|s| s.line == line("Some(b) => launch!"))
        .unwrap();
    assert_eq!(some.kernels, ["dot_f32"]);
    let none = sites
        .iter()
        .find(|s| s.line == line("None => launch!"))
        .unwrap();
    assert_eq!(none.kernels, ["total_f32"]);
    assert_eq!(none.args.len(), 3, "trailing comma");
    let good = sites.iter().find(|s| s.line == line("\"halves\"")).unwrap();
    assert_eq!(
        good.args.iter().map(|(_, k)| k.clone()).collect::<Vec<_>>(),
        [
            Kind::Buffer,
            Kind::Buffer,
            Kind::Scalar(Some("u64".into())),
            Kind::Scalar(Some("i32".into()))
        ]
    );
    let scale_good = sites
        .iter()
        .find(|s| s.line == line("fn good") + 3)
        .unwrap();
    assert_eq!(scale_good.kernels, ["scale_f32", "scale_f16"]);
    assert!(
        scale_good
            .args
            .iter()
            .all(|(_, k)| matches!(k, Kind::Buffer | Kind::Scalar(Some(_))))
    );
    assert_eq!(sites.len(), 9, "the commented launch! is no site");
    // The mistakes, each reported.
    let scale_bad = format!("fake.rs:{}:", line("fn bad") + 4);
    let expect = [
        (
            scale_bad.clone(),
            "scale_f32: 5 arguments, the kernel has 4",
        ),
        (scale_bad, "scale_f16: 5 arguments, the kernel has 4"),
        (
            at("\"sum_f32\""),
            "argument 2 `&mut acc.slice`: a device buffer for a non-pointer",
        ),
        (
            at("\"sum_f32\""),
            "argument 3 `&n64`: a scalar for a pointer",
        ),
        (at("\"sum_f16\""), "argument 2 `&m`: Rust f64 for C u64"),
        (at("\"nope_f32\""), "denotes no kernel of fake.cu"),
        (at("\"nofile\""), "no kernel file \"nofile\""),
    ];
    for (here, what) in &expect {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(here) && p.contains(what)),
            "not reported: {here} {what}\nproblems:\n{}",
            problems.join("\n")
        );
    }
    assert_eq!(
        problems.len(),
        expect.len(),
        "problems:\n{}",
        problems.join("\n")
    );
}

/// The real sources with one argument added, removed, or swapped at each `launch!` site in
/// turn: each change is reported at that site.
#[test]
fn checker_catches_mutated_launch_sites() {
    if !have_gxx() {
        return;
    }
    let sigs = kernel_sigs();
    let srcs = cuda_sources();
    let (sites, clean) = check(&srcs, sigs, KERNEL_NAMES);
    assert!(clean.is_empty(), "{}", clean.join("\n"));
    let mut mutations = 0;
    for (i, (name, text)) in srcs.iter().enumerate() {
        let blank = blank_comments(text);
        for (at, args_at, end) in launch_sites(&blank) {
            let line = line_of(text, at);
            let here = format!("{name}:{line}:");
            let reported = |edited: String, what: &str| {
                let mut all = srcs.clone();
                all[i].1 = edited;
                let p = check(&all, sigs, KERNEL_NAMES).1;
                assert!(
                    p.iter().any(|p| p.starts_with(&here) && p.contains(what)),
                    "{here} mutation not reported ({what:?}): {p:?}"
                );
            };
            let arity = " arguments, the kernel has ";
            // One more argument.
            reported(
                format!("{}&0u64, {}", &text[..args_at], &text[args_at..]),
                arity,
            );
            // One argument less (the first, with its comma).
            let cut = top_level(&blank[args_at..end], b',')
                .first()
                .map_or(end, |k| args_at + k + 1);
            reported(format!("{}{}", &text[..args_at], &text[cut..]), arity);
            mutations += 2;
            // The first buffer and the first scalar swapped, where both are known.
            let site = sites
                .iter()
                .find(|s| s.at == format!("{name}:{line}"))
                .unwrap();
            let buf = site.args.iter().position(|(_, k)| *k == Kind::Buffer);
            let sca = (site.args.iter()).position(|(_, k)| matches!(k, Kind::Scalar(_)));
            if let (Some(bi), Some(si)) = (buf, sca) {
                let mut args: Vec<&str> = split_top(&blank[args_at..end], b',');
                args.swap(bi, si);
                let edited = format!("{} {}{}", &text[..args_at], args.join(", "), &text[end..]);
                reported(edited, "");
                mutations += 1;
            }
        }
    }
    eprintln!("{mutations} mutations, each reported");
    assert!(mutations > 0);
}
