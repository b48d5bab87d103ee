//! Periodic orthonormal wavelets on \[0,1): Haar (= db1) and Daubechies db2..db10.
//!
//! Filters: the published Daubechies lowpass filters h_0..h_{2N-1} (sum sqrt 2; Daubechies, Ten
//! Lectures on Wavelets, Table 6.1, as distributed by PyWavelets 1.8 `Wavelet('dbN').rec_lo`),
//! highpass g_m = (-1)^m h_{2N-1-m}. tests/basis_wavelet.rs checks orthonormality, the N vanishing
//! moments and sum h = sqrt 2 for every filter, and tests/basis_crosscheck.rs the whole transform
//! against PyWavelets (`wavedec(mode='periodization')`, which is this transform with the input
//! index shifted by 1 - N: [`Dwt::with_offset`]).
//!
//! Conventions: phi(x) = sqrt2 sum_m h_m phi(2x - m) (support \[0, 2N-1\]), psi(x) = sqrt2 sum_m
//! g_m phi(2x - m), phi_{j,k}(x) = 2^{j/2} phi(2^j x - k) periodised on \[0,1). One level maps
//! approximation coefficients a of length 2L to a'_k = sum_m h_m a_{(2k+m) mod 2L} and
//! d_k = sum_m g_m a_{(2k+m) mod 2L}, which is exactly a_{j-1,k} = <v, phi_{j-1,k}> and
//! d_{j-1,k} = <v, psi_{j-1,k}> when a = (<v, phi_{j,i}>)_i. The transform of n = 2^J samples runs
//! all J levels; the output is ordered `[a_0, d_0, d_1 (2), d_2 (4), ..., d_{J-1} (n/2)]`, so
//! mode `j:k` (0 <= j < J, 0 <= k < 2^j) is index 2^j + k and the scaling coefficient `-1:0` is
//! index 0.
//!
//! The basis built on this transform (grid, continuous coefficients, bounds, 1-3 dimensions) is
//! [`super::wavelet_basis`]; the d-D transform is [`super::dwt_nd`].

use super::BasisError;
pub use super::wavelet_constants::ShapeConstants;
use crate::precision::{Format, Overflow, Real, round};
use std::f64::consts::FRAC_1_SQRT_2;
use std::sync::OnceLock;

/// Daubechies lowpass filters db1..db10 (h_0..h_{2N-1}, sum sqrt 2).
const DB: [&[f64]; 10] = [
    &[FRAC_1_SQRT_2, FRAC_1_SQRT_2],
    &[
        0.48296291314453416,
        0.8365163037378079,
        0.2241438680420134,
        -0.12940952255126037,
    ],
    &[
        0.33267055295008263,
        0.8068915093110925,
        0.45987750211849154,
        -0.13501102001025458,
        -0.08544127388202666,
        0.03522629188570953,
    ],
    &[
        0.2303778133088965,
        0.7148465705529157,
        0.6308807679298589,
        -0.027983769416859854,
        -0.18703481171909309,
        0.030841381835560764,
        0.0328830116668852,
        -0.010597401785069032,
    ],
    &[
        0.16010239797419293,
        0.6038292697971896,
        0.7243085284377729,
        0.13842814590132074,
        -0.24229488706638203,
        -0.032244869584638375,
        0.07757149384004572,
        -0.006241490212798274,
        -0.012580751999081999,
        0.0033357252854737712,
    ],
    &[
        0.11154074335010947,
        0.49462389039845306,
        0.7511339080210954,
        0.31525035170919763,
        -0.22626469396543983,
        -0.12976686756726194,
        0.09750160558732304,
        0.027522865530305727,
        -0.03158203931748603,
        0.0005538422011614961,
        0.004777257510945511,
        -0.0010773010853084796,
    ],
    &[
        0.07785205408500918,
        0.3965393194819173,
        0.7291320908462351,
        0.4697822874051931,
        -0.14390600392856498,
        -0.22403618499387498,
        0.07130921926683026,
        0.08061260915108308,
        -0.03802993693501441,
        -0.01657454163066688,
        0.01255099855609984,
        0.0004295779729213665,
        -0.0018016407040474908,
        0.00035371379997452024,
    ],
    &[
        0.05441584224310401,
        0.31287159091429995,
        0.6756307362972898,
        0.5853546836542067,
        -0.015829105256349306,
        -0.2840155429615469,
        0.0004724845739132828,
        0.12874742662047847,
        -0.017369301001807547,
        -0.044088253930794755,
        0.013981027917398282,
        0.008746094047405777,
        -0.004870352993451574,
        -0.00039174037337694705,
        0.0006754494064505693,
        -0.00011747678412476953,
    ],
    &[
        0.038077947363878345,
        0.24383467461259034,
        0.6048231236901112,
        0.6572880780513005,
        0.13319738582500756,
        -0.2932737832791749,
        -0.09684078322297646,
        0.14854074933810638,
        0.03072568147933338,
        -0.06763282906132997,
        0.00025094711483145197,
        0.022361662123679096,
        -0.004723204757751397,
        -0.00428150368246343,
        0.0018476468830562265,
        0.00023038576352319597,
        -0.0002519631889427101,
        3.93473203162716e-05,
    ],
    &[
        0.026670057900555554,
        0.1881768000776915,
        0.5272011889317256,
        0.6884590394536035,
        0.2811723436605775,
        -0.24984642432731538,
        -0.19594627437737705,
        0.12736934033579325,
        0.09305736460357235,
        -0.07139414716639708,
        -0.029457536821875813,
        0.033212674059341,
        0.0036065535669561697,
        -0.010733175483330575,
        0.001395351747052901,
        0.001992405295185056,
        -0.0006858566949597116,
        -0.00011646685512928545,
        9.358867032006959e-05,
        -1.3264202894521244e-05,
    ],
];

/// A Daubechies wavelet with N vanishing moments (N = 1 is Haar).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Wavelet {
    order: usize,
}

impl Wavelet {
    /// Haar.
    pub const HAAR: Wavelet = Wavelet { order: 1 };
    /// Every supported wavelet: haar, db2..db10.
    pub fn all() -> Vec<Wavelet> {
        (1..=10).map(|order| Wavelet { order }).collect()
    }
    /// dbN with N vanishing moments, N = 1..10.
    pub fn daubechies(order: usize) -> Result<Self, String> {
        if (1..=10).contains(&order) {
            Ok(Wavelet { order })
        } else {
            Err(format!(
                "Daubechies order must be 1..10 (haar = db1), got {order}"
            ))
        }
    }
    /// "haar" or "db1".."db10".
    pub fn parse(name: &str) -> Result<Self, String> {
        let t = name.trim().to_ascii_lowercase();
        if t == "haar" {
            return Ok(Self::HAAR);
        }
        match t.strip_prefix("db").map(str::parse::<usize>) {
            Some(Ok(n)) => {
                Self::daubechies(n).map_err(|e| format!("unknown wavelet '{name}': {e}"))
            }
            _ => Err(format!("not a known wavelet (haar, db1..db10): '{name}'")),
        }
    }
    /// "haar" (db1) or "dbN".
    pub fn name(&self) -> String {
        if self.order == 1 {
            "haar".into()
        } else {
            format!("db{}", self.order)
        }
    }
    /// Vanishing moments N.
    pub fn order(&self) -> usize {
        self.order
    }
    /// Lowpass filter h (length 2N).
    pub fn lowpass(&self) -> &'static [f64] {
        DB[self.order - 1]
    }
    /// Highpass filter g_m = (-1)^m h_{2N-1-m}.
    pub fn highpass(&self) -> Vec<f64> {
        highpass_of(self.lowpass())
    }
    /// sum |h_m|: the gain of one level's |W| (see the module docs).
    pub fn h1(&self) -> f64 {
        self.lowpass().iter().map(|x| x.abs()).sum()
    }
    /// D >= ||L L^T - I||_2 for one periodic level L of the f64 table at any length, so
    /// ||L||_2 <= sqrt(1 + D) (`super::wavelet_constants::table_defect`; proven in interval
    /// arithmetic, a few ulps).
    pub fn table_defect(&self) -> f64 {
        static CACHE: [OnceLock<f64>; 10] = [const { OnceLock::new() }; 10];
        *CACHE[self.order - 1]
            .get_or_init(|| super::wavelet_constants::table_defect(self.lowpass()))
    }
    /// nu^levels >= ||W~||_2 for `levels` levels of the f64 table (nu = sqrt(1 + D) <= 1 + D/2):
    /// the gain the proofs take where dbN's levels would give exactly 1.
    pub fn table_gain(&self, levels: f64) -> f64 {
        1.0 + crate::precision::compound(&[(0.5 * self.table_defect(), levels)])
    }
    /// Bound on ||W - W~||_2 for `levels` levels of dbN (W) and of the f64 table (W~):
    /// levels delta nu^(levels - 1), delta = 2N r >= one level's distance (r the certified
    /// table-to-dbN distance; telescoping over the levels, dbN's of norm 1).
    pub fn table_to_exact(&self, levels: f64) -> f64 {
        let delta = super::wavelet_constants::level_distance(
            self.lowpass().len(),
            self.shape().table_distance,
        );
        levels * delta * self.table_gain(levels)
    }
    /// Certified constants of phi and psi (computed once per wavelet and process: about 1 s for
    /// db10).
    pub fn shape(&self) -> &'static ShapeConstants {
        static CACHE: [OnceLock<ShapeConstants>; 10] = [const { OnceLock::new() }; 10];
        CACHE[self.order - 1].get_or_init(|| shape_constants(*self))
    }
}

fn shape_constants(w: Wavelet) -> ShapeConstants {
    let h = w.lowpass();
    let mu1 = h
        .iter()
        .enumerate()
        .map(|(m, hm)| m as f64 * hm)
        .sum::<f64>()
        / std::f64::consts::SQRT_2;
    if w.order == 1 {
        // phi = 1 on [0, 1), psi = +-1: exact. The table is 1/sqrt2 rounded to f64.
        let exact = crate::interval::Interval::SQRT_2 / crate::interval::point(2.0);
        return ShapeConstants {
            mu1,
            abs_integral: 1.0,
            c0: 0.5,
            c1: 0.25,
            psi_sup: 1.0,
            filter_radius: 0.0,
            osc: 0.0,
            table_distance: super::wavelet_constants::distance_to_table(&[exact, exact], h),
        };
    }
    // Never a guess: without a proof every bound that takes these constants is infinite
    // (tests/basis_wavelet.rs checks that db2..db10 are all certified).
    super::wavelet_constants::certify(h, mu1).unwrap_or_else(|_| ShapeConstants::unproven(mu1))
}

/// The quadrature-mirror highpass g_m = (-1)^m h_{L-1-m} of a lowpass filter h of length L
/// (exact: sign flips only).
pub fn highpass_of(h: &[f64]) -> Vec<f64> {
    let l = h.len();
    (0..l)
        .map(|m| {
            if m.is_multiple_of(2) {
                h[l - 1 - m]
            } else {
                -h[l - 1 - m]
            }
        })
        .collect()
}

/// A planned periodic DWT of length n = 2^J (all J levels) in scalar type T. Filters are rounded
/// once to T ("plans are data").
pub struct Dwt<T: Real> {
    n: usize,
    levels: u32,
    h: Vec<T>,
    g: Vec<T>,
    offset: isize,
}

impl<T: Real> Dwt<T> {
    /// Plan; n must be a power of two >= 2.
    pub fn new(w: Wavelet, n: usize) -> Result<Self, BasisError> {
        Self::with_offset(w, n, 0)
    }
    /// Plan whose levels read a_{(2k + m + offset) mod 2L} (offset = 1 - N is PyWavelets'
    /// periodization convention; 0 is this module's).
    pub fn with_offset(w: Wavelet, n: usize, offset: isize) -> Result<Self, BasisError> {
        if n < 2 || !n.is_power_of_two() {
            return Err(BasisError::usage(
                "--sizes",
                format!(
                    "the periodic DWT ({}) needs a power-of-two length >= 2, got {n}",
                    w.name()
                ),
            ));
        }
        Ok(Dwt {
            n,
            levels: n.trailing_zeros(),
            h: w.lowpass().iter().map(|&x| T::from_f64(x)).collect(),
            g: w.highpass().iter().map(|&x| T::from_f64(x)).collect(),
            offset,
        })
    }
    /// Length.
    pub fn len(&self) -> usize {
        self.n
    }
    /// Always false.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Levels J = log2 n.
    pub fn levels(&self) -> u32 {
        self.levels
    }

    /// One forward level on a line: `x[..len]` (approximations a of length len) to
    /// `out[..len]` = (a'_0..a'_{len/2-1}, d_0..d_{len/2-1}), a'_k = sum_m h_m
    /// a_{(2k+m+offset) mod len}, d_k likewise with g (sums in m order, in T).
    pub fn level(&self, x: &[T], out: &mut [T], len: usize) {
        let taps = self.h.len();
        let half = len / 2;
        for k in 0..half {
            let start = 2 * k as isize + self.offset;
            let (mut a, mut d) = (T::zero(), T::zero());
            if start >= 0 && start as usize + taps <= len {
                let s = start as usize;
                for m in 0..taps {
                    let v = x[s + m];
                    a += self.h[m] * v;
                    d += self.g[m] * v;
                }
            } else {
                for m in 0..taps {
                    let v = x[(start + m as isize).rem_euclid(len as isize) as usize];
                    a += self.h[m] * v;
                    d += self.g[m] * v;
                }
            }
            out[k] = a;
            out[half + k] = d;
        }
    }

    /// One inverse level on a line (the transpose of [`Dwt::level`]): `c[..len]` =
    /// (approximations, details) of length len/2 each to `out[..len]`.
    pub fn level_inverse(&self, c: &[T], out: &mut [T], len: usize) {
        let taps = self.h.len();
        let half = len / 2;
        for v in &mut out[..len] {
            *v = T::zero();
        }
        for k in 0..half {
            let (a, d) = (c[k], c[half + k]);
            let start = 2 * k as isize + self.offset;
            for m in 0..taps {
                let i = (start + m as isize).rem_euclid(len as isize) as usize;
                out[i] += self.h[m] * a + self.g[m] * d;
            }
        }
    }

    /// Forward transform in place (unnormalised: the input is a_J as given), scratch of length
    /// at least n; `store` rounds every level's output array to a format (model II). Returns
    /// whether a saturating format clipped a value.
    pub fn forward(&self, x: &mut [T], scratch: &mut [T], store: Option<Format>) -> bool {
        self.forward_to(x, scratch, store, 1)
    }

    /// [`Dwt::forward`] down to approximations of length `stop` (a power of two <= n): the
    /// levels run while the current length exceeds `stop`, so `x[..stop]` holds a_{log2 stop}
    /// and `x[stop..2 stop]` the details of that level.
    pub fn forward_to(
        &self,
        x: &mut [T],
        scratch: &mut [T],
        store: Option<Format>,
        stop: usize,
    ) -> bool {
        assert_eq!(
            x.len(),
            self.n,
            "DWT of length {} given {}",
            self.n,
            x.len()
        );
        let mut clipped = false;
        let mut len = self.n;
        while len >= 2 && len > stop {
            self.level(x, scratch, len);
            if let Some(fmt) = store {
                clipped |= round_stored(&mut scratch[..len], fmt);
            }
            x[..len].copy_from_slice(&scratch[..len]);
            len /= 2;
        }
        clipped
    }

    /// Inverse transform in place (the transpose of [`Dwt::forward`]), scratch of length at least
    /// n.
    pub fn inverse(&self, c: &mut [T], scratch: &mut [T]) {
        self.inverse_from(c, scratch, 1)
    }

    /// The inverse of [`Dwt::forward_to`] with the same `stop`: levels from approximations of
    /// length `stop` up to n.
    pub fn inverse_from(&self, c: &mut [T], scratch: &mut [T], stop: usize) {
        assert_eq!(
            c.len(),
            self.n,
            "DWT of length {} given {}",
            self.n,
            c.len()
        );
        let mut half = stop.max(1);
        while half < self.n {
            let len = 2 * half;
            self.level_inverse(c, scratch, len);
            c[..len].copy_from_slice(&scratch[..len]);
            half = len;
        }
    }
}

/// Round every value to `fmt` in place (model II's stored arrays); whether a saturating format
/// clipped one.
pub(crate) fn round_stored<T: Real>(v: &mut [T], fmt: Format) -> bool {
    let mut clipped = false;
    for v in v {
        let r = round(v.to_f64(), fmt);
        clipped |= fmt.overflow() == Overflow::Saturate && r.abs() >= fmt.max_finite();
        *v = T::from_f64(r);
    }
    clipped
}

/// Index of mode (j, k) in the output layout, checked against J levels.
pub fn mode_index(mode: &[i64], levels: u32) -> Result<usize, BasisError> {
    let bad = |why: String| BasisError::usage("--modes", why);
    if mode.len() != 2 {
        return Err(bad(format!(
            "a wavelet mode is j:k (level and shift; -1:0 the scaling coefficient), got {mode:?}"
        )));
    }
    let (j, k) = (mode[0], mode[1]);
    if j == -1 && k == 0 {
        return Ok(0);
    }
    if j < 0 || j >= levels as i64 {
        return Err(bad(format!(
            "wavelet level j = {j} does not exist for n = 2^{levels} (0 <= j < {levels}, or -1:0)"
        )));
    }
    if k < 0 || k >= 1i64 << j {
        return Err(bad(format!(
            "wavelet shift k = {k} out of range at level {j} (0 <= k < {})",
            1i64 << j
        )));
    }
    Ok((1usize << j) + k as usize)
}

/// The label of output index i.
pub fn index_mode(i: usize) -> Vec<i64> {
    if i == 0 {
        return vec![-1, 0];
    }
    let j = usize::BITS - 1 - i.leading_zeros();
    vec![j as i64, (i - (1usize << j)) as i64]
}
