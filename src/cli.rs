//! Parsing and validation of command-line values. Every failure names the field and the allowed
//! values; the binary turns it into exit code 2 before any output file is created.

mod budget;
mod input;
mod output;

pub use budget::{
    EMULATED, SWEEP_WORK_LIMIT, available_memory, check_memory, check_memory_with,
    check_sweep_work, check_work, culprit, format_bytes, format_limit, transform_work,
};
pub use input::{check_input, check_regular, open_input, read_input, read_input_to_string};
pub use output::{
    check_not_inputs, check_output_dir, check_output_file, check_output_files, folder_of,
    partial_file, persist, plain_io, remove_stale, same_file, write_atomically,
};

use crate::fft::Algorithm;
use crate::precision::{Format, Model, ScaledFormat, Scaling};

/// A bad command-line value: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct UsageError {
    pub field: String,
    pub message: String,
}

impl UsageError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        UsageError {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// The items of a comma-separated list given as `field`, trimmed. An empty item (two commas in
/// a row, or one at an end) is refused: it is more likely a value typed wrong than meant. A
/// list that is blank as a whole gives no items (each caller says what it needs).
pub fn split_list<'a>(field: &str, list: &'a str) -> Result<Vec<&'a str>, UsageError> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<&str> = list.split(',').map(str::trim).collect();
    match items.iter().position(|t| t.is_empty()) {
        Some(i) => Err(UsageError::new(
            field,
            format!(
                "'{list}': item {} of {} is empty (two commas in a row, or one at an end)",
                i + 1,
                items.len()
            ),
        )),
        None => Ok(items),
    }
}

fn parse_size(t: &str) -> Result<usize, String> {
    let v = if let Some((b, e)) = t.split_once('^') {
        let b: u64 = b
            .trim()
            .parse()
            .map_err(|_| format!("'{t}' is not an integer"))?;
        let e: u32 = e
            .trim()
            .parse()
            .map_err(|_| format!("'{t}' is not an integer"))?;
        b.checked_pow(e)
            .ok_or_else(|| format!("'{t}' is too large"))? as i128
    } else {
        t.parse::<i128>()
            .map_err(|_| format!("'{t}' is not an integer"))?
    };
    if v <= 0 {
        return Err(format!("'{t}' is not positive; sizes must be >= 1"));
    }
    usize::try_from(v).map_err(|_| format!("'{t}' is too large"))
}

/// Dotted name of the field at byte `pos` of a TOML text: the key on that line inside the last
/// `[section]` / `[[section]]` header above it.
pub fn toml_field_at(text: &str, pos: usize) -> (usize, String) {
    let pos = pos.min(text.len());
    let line_no = text[..pos].matches('\n').count() + 1;
    let mut section = String::new();
    let mut key = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if i + 1 > line_no {
            break;
        }
        if t.starts_with('[') {
            section = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            key.clear();
        }
        if i + 1 == line_no
            && let Some((k, _)) = t.split_once('=')
        {
            key = k.trim().trim_matches('"').to_string();
        }
    }
    let name = match (section.is_empty(), key.is_empty()) {
        (true, true) => "config".to_string(),
        (true, false) => key,
        (false, true) => section,
        (false, false) => format!("{section}.{key}"),
    };
    (line_no, name)
}

/// Grid sizes: a comma-separated list of positive integers (`16,32,100`, `2^10`), where an item
/// `a..b` means every power of two from a to b (`2^4..2^12`, `16..4096`).
pub fn parse_sizes(list: &str) -> Result<Vec<usize>, UsageError> {
    let field = "--sizes";
    let mut out = Vec::new();
    for item in split_list(field, list)? {
        if let Some((a, b)) = item.split_once("..") {
            let a = parse_size(a.trim()).map_err(|m| UsageError::new(field, m))?;
            let b = parse_size(b.trim()).map_err(|m| UsageError::new(field, m))?;
            if !a.is_power_of_two() || !b.is_power_of_two() || a > b {
                return Err(UsageError::new(
                    field,
                    format!("range '{item}' must go from a power of two up to a power of two"),
                ));
            }
            let mut s = a;
            while s <= b {
                out.push(s);
                s *= 2;
            }
        } else {
            out.push(parse_size(item).map_err(|m| UsageError::new(field, m))?);
        }
    }
    if out.is_empty() {
        return Err(UsageError::new(
            field,
            "empty; give positive grid sizes, e.g. 16,32,64 or 2^4..2^12",
        ));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// One positive integer given as `field`, written like a grid size (`4099`, `2^12`).
pub fn parse_positive(field: &str, t: &str) -> Result<usize, UsageError> {
    parse_size(t.trim()).map_err(|m| UsageError::new(field, m))
}

/// Modes: comma-separated; an integer k means (k, ..., k) in d dimensions, `a:b[:c]` gives each axis.
pub fn parse_modes(list: &str, dim: usize) -> Result<Vec<Vec<i64>>, UsageError> {
    parse_modes_of("--modes", list, dim)
}

/// [`parse_modes`] for a field with another name (`--mode` of `mpno bounds`).
pub fn parse_modes_of(field: &str, list: &str, dim: usize) -> Result<Vec<Vec<i64>>, UsageError> {
    let mut out = Vec::new();
    for item in split_list(field, list)? {
        let parts: Vec<i64> = item
            .split(':')
            .map(|p| p.trim().parse::<i64>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                UsageError::new(
                    field,
                    format!("'{item}' is not an integer mode (e.g. 3 or 3:1)"),
                )
            })?;
        let mode = match parts.len() {
            1 => vec![parts[0]; dim],
            k if k == dim => parts,
            k => {
                return Err(UsageError::new(
                    field,
                    format!("'{item}' has {k} entries but --dim is {dim}"),
                ));
            }
        };
        out.push(mode);
    }
    if out.is_empty() {
        return Err(UsageError::new(
            field,
            "empty; give integer modes, e.g. 0,3",
        ));
    }
    out.dedup();
    Ok(out)
}

/// Formats by name (see [`Format::allowed_names`]).
pub fn parse_formats(list: &str) -> Result<Vec<Format>, UsageError> {
    let items = split_list("--formats", list)?;
    if let Some(t) = items.iter().find(|t| t.contains('@')) {
        return Err(UsageError::new(
            "--formats",
            format!(
                "'{t}': scaled formats (ELEM@SCALING) are measured by `errors --basis fourier` only; allowed here: {}",
                Format::allowed_names()
            ),
        ));
    }
    let mut out: Vec<Format> = items
        .iter()
        .map(|t| t.parse::<Format>())
        .collect::<Result<_, _>>()
        .map_err(|e| UsageError::new("--formats", e.to_string()))?;
    if out.is_empty() {
        return Err(UsageError::new(
            "--formats",
            format!("empty; allowed: {}", Format::allowed_names()),
        ));
    }
    out.dedup();
    Ok(out)
}

/// Why a list of scaled formats cannot be measured under `models`, if it cannot: every scaled
/// format needs one model that takes it (input, storage or gemm; channel scaling input only,
/// [`crate::fft::takes_scaled`]). Models that do not take it are skipped for it.
pub fn scaled_without_model(scaled: &[ScaledFormat], models: &[Model]) -> Option<String> {
    let sf = scaled
        .iter()
        .find(|sf| !models.iter().any(|&m| crate::fft::takes_scaled(sf, m)))?;
    Some(format!(
        "scaled format '{sf}' is measured under models input, storage and gemm (channel scaling under input only); add {}",
        if matches!(sf.scaling, Scaling::Channel { .. }) {
            "input"
        } else {
            "input, storage or gemm"
        }
    ))
}

/// The `--formats` list of `mpno errors --basis fourier`: plain formats and scaled ones
/// (`ELEM@SCALING`, see [`ScaledFormat`]), the latter checked against the grid dimension (a
/// channel axis must be one of the `dim` axes).
pub fn parse_format_list(
    list: &str,
    dim: usize,
) -> Result<(Vec<Format>, Vec<ScaledFormat>), UsageError> {
    let mut plain = Vec::new();
    let mut scaled = Vec::new();
    for t in split_list("--formats", list)? {
        if t.contains('@') {
            let sf: ScaledFormat = t.parse().map_err(|e: crate::precision::ScaledError| {
                UsageError::new("--formats", format!("{e} (in '{t}')"))
            })?;
            if let Scaling::Channel { axis } = sf.scaling
                && axis >= dim
            {
                return Err(UsageError::new(
                    "--formats",
                    format!(
                        "'{t}': channel axis {axis} of a {dim}-D grid; allowed axes: {}",
                        (0..dim)
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if !scaled.contains(&sf) {
                scaled.push(sf);
            }
        } else {
            let f: Format = t.parse().map_err(|e: crate::precision::UnknownFormat| {
                UsageError::new(
                    "--formats",
                    format!("{e}; scaled: e4m3 or e5m2 @ tensor, channel[:AXIS], mx (= mx32), mxK"),
                )
            })?;
            if !plain.contains(&f) {
                plain.push(f);
            }
        }
    }
    if plain.is_empty() && scaled.is_empty() {
        return Err(UsageError::new(
            "--formats",
            format!("empty; allowed: {}", Format::allowed_names()),
        ));
    }
    Ok((plain, scaled))
}

/// Precision models by name (see [`Model::allowed_names`]).
pub fn parse_models(list: &str) -> Result<Vec<Model>, UsageError> {
    let mut out: Vec<Model> = split_list("--models", list)?
        .into_iter()
        .map(|t| t.parse::<Model>())
        .collect::<Result<_, _>>()
        .map_err(|e| UsageError::new("--models", e))?;
    if out.is_empty() {
        return Err(UsageError::new(
            "--models",
            format!("empty; allowed: {}", Model::allowed_names()),
        ));
    }
    out.dedup();
    Ok(out)
}

/// A constant given on the command line must be a finite number >= 0.
pub fn check_nonnegative(field: &str, v: f64) -> Result<(), UsageError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(UsageError::new(
            field,
            format!("{v} must be a finite number >= 0"),
        ))
    }
}

/// Dimension 1..=3.
pub fn check_dim(dim: usize) -> Result<usize, UsageError> {
    if (1..=3).contains(&dim) {
        Ok(dim)
    } else {
        Err(UsageError::new(
            "--dim",
            format!("{dim} is not supported; allowed: 1, 2, 3"),
        ))
    }
}

/// Check that every grid s^d fits: the point count must not overflow and the sweep's arrays
/// (`threads` transforms at once) must fit in the available memory; radix-2/4 need powers of two.
pub fn check_sizes(
    sizes: &[usize],
    dim: usize,
    alg: Algorithm,
    threads: usize,
    available: Option<u64>,
) -> Result<(), UsageError> {
    for &s in sizes {
        if matches!(alg, Algorithm::Radix2 | Algorithm::Radix4) && !s.is_power_of_two() {
            return Err(UsageError::new(
                "--sizes",
                format!("{s} is not a power of two, which --algorithm {alg} requires"),
            ));
        }
        // The samples (8 bytes a point) and the f64 reference's output (16) for the whole
        // sweep; then `threads` transforms at once, each its data, scratch and output (3 x 16),
        // or, under model I, the reference transform of the rounded samples
        // (fft::reference_bytes: double words, Bluestein's padded lines and tables); and the
        // plans of each compared transform (fft::plan_bytes: twiddles, chirps, root tables) and
        // the shared root cache.
        let pts = (s as f64).powi(dim as i32);
        let shape = vec![s; dim];
        let need = pts * 24.0
            + (pts * (3 * 16 * threads) as f64).max(crate::fft::reference_bytes(&shape, threads))
            + threads as f64 * crate::fft::plan_bytes(&shape, alg)
            + crate::fft::ROOT_CACHE_BYTES;
        check_memory_with(
            "--sizes",
            need,
            &format!("s = {s} in dimension {dim} is n = {pts:.3e} points: its arrays"),
            available,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_sizes("2^2..2^5").unwrap(), vec![4, 8, 16, 32]);
        assert_eq!(parse_sizes("100, 16 ,16").unwrap(), vec![16, 100]);
        for bad in ["", " , ", "0", "-4", "abc", "3..17", "2^99"] {
            let e = parse_sizes(bad).unwrap_err();
            assert_eq!(e.field, "--sizes", "{bad}");
        }
    }

    #[test]
    fn modes_and_lists() {
        assert_eq!(parse_modes("0,3", 2).unwrap(), vec![vec![0, 0], vec![3, 3]]);
        assert_eq!(parse_modes("3:-1", 2).unwrap(), vec![vec![3, -1]]);
        assert!(parse_modes("1:2:3", 2).is_err());
        assert!(
            parse_formats("fp16,fp9")
                .unwrap_err()
                .message
                .contains("allowed")
        );
        assert!(
            parse_models("input,magic")
                .unwrap_err()
                .message
                .contains("storage")
        );
        assert!(check_dim(4).is_err());
        let (plain, scaled) =
            parse_format_list("fp16,e4m3@tensor,e5m2@mx32,e4m3@mx,e4m3@mx32", 1).unwrap();
        assert_eq!(plain, vec![Format::Fp16]);
        assert_eq!(
            scaled.iter().map(|s| s.name()).collect::<Vec<_>>(),
            ["e4m3@tensor", "e5m2@mx32", "e4m3@mx32"]
        );
        for bad in [
            "e4m3@mx0",
            "fp32@tensor",
            "e4m3@row",
            "e4m3@channel:1",
            "fp9",
            "",
        ] {
            let e = parse_format_list(bad, 1).unwrap_err();
            assert_eq!(e.field, "--formats", "{bad}");
        }
    }

    #[test]
    fn memory_check_names_the_size() {
        let e = check_sizes(&[1 << 20], 3, Algorithm::Auto, 2, Some(1 << 34)).unwrap_err();
        assert!(
            e.message.contains("1048576") && e.message.contains("memory"),
            "{e}"
        );
        assert!(check_sizes(&[1 << 10], 1, Algorithm::Auto, 2, Some(1 << 34)).is_ok());
        assert!(check_sizes(&[12], 1, Algorithm::Radix2, 2, None).is_err());
        // A 1-D Bluestein length: arrays and reference about 26 GB; the compared transforms'
        // plans (chirp, spectrum, two radix-4 plans of m = 2^27, their root tables: 17 GB each,
        // two at once) 34 GB more.
        let s = 3 * (1 << 24) + 1;
        let e = check_sizes(&[s], 1, Algorithm::Auto, 2, Some(32 << 30)).unwrap_err();
        assert_eq!(e.field, "--sizes");
        assert!(check_sizes(&[s], 1, Algorithm::Auto, 2, Some(64 << 30)).is_ok());
    }
}
