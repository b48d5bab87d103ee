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
//! Sample-based coefficients: a_{J,i} = 2^{-J/2} v(i / n) (the usual "samples are the finest
//! approximation"), i.e. the transform of the raw samples divided by sqrt(n) in f64 (the
//! unnormalised transform runs in the format, as the unnormalised DFT does, and grows like sqrt(n)).
//!
//! ## Discretization bound (proof)
//! For j < J, psi_{j,k} lies in V_J, so with P_J the orthogonal projection onto V_J,
//! <v, psi_{j,k}> = sum_i <v, phi_{J,i}> gamma_i, gamma_i = <phi_{J,i}, psi_{j,k}> (the inverse DWT
//! of the unit vector of the mode: computable exactly), while the sample-based coefficient is
//! sum_i 2^{-J/2} v(x_i) gamma_i. Since the integral of phi is 1,
//! e_i = <v, phi_{J,i}> - 2^{-J/2} v(x_i) = 2^{-J/2} int phi(t) (v((i+t)/n) - v(i/n)) dt, so
//! |e_i| <= 2^{-J/2} (L C0 / n + [i + 2N - 1 > n] J_v A), C0 = int |t| |phi(t)| dt,
//! A = int |phi|, where J_v = |v(1) - v(0)| is the jump of the periodised v (cells whose support
//! wraps past 1 pick it up: |v(y - 1) - v(x_i)| <= L |y - x_i| + J_v). Hence
//! |c - c^s| <= sum_i |gamma_i| |e_i|. For Haar (phi = 1 on \[0,1)) this is 2^{-j/2} L / (2 n): the
//! spec's (L ||psi||_inf) r_s on cells that respect psi's discontinuities (r_s = 1/(2n), over the
//! support of measure 2^{-j}). C0, C1, A and ||psi||_inf are certified upper bounds, proven in
//! interval arithmetic for the exact dbN filter (`super::wavelet_constants`).
//!
//! ## Continuous coefficients
//! Haar: adaptive Gauss-Kronrod on \[a, mid\] and \[mid, b\] (1e-13). Daubechies: the same
//! projection argument at a fine level R (2^R >= 2^20, >= 16 n) with samples at the centre of mass
//! (i + mu_1) / 2^R of each phi_{R,i} (mu_1 = int t phi = sum m h_m / sqrt2, second order for smooth
//! v), then the f64 DWT down to level j; its error is bounded as above with C1 = int |t - mu_1|
//! |phi| and is reported as the coefficient's error (added to the bound).
//!
//! ## Precision bounds (proof sketch)
//! Model I: the input errors delta_i (|delta_i| <= u |v_i| + sigma/2) reach the coefficient through
//! gamma: |dc| <= (u sum |gamma_i| |v_i| + sigma/2 ||gamma||_1) / sqrt(n).
//! Models II and III: one level is an orthogonal map W (||W|| = 1); computed, each output is a sum
//! of 2N products with rounded filters, so componentwise |W^ a - W a| <= eta |W| |a| with
//! eta = u + gamma_{2N} (1 + u) (III) or u + eta_64 (1 + u) (II: f64 arithmetic, output rounded),
//! and || |W| ||_2 <= H1 = sum |h_m| (row and column sums); in III, k taps below the smallest
//! normal number (db10's last taps in fp16) are rounded with absolute error sigma/2 and add
//! k sigma to eta H1. Errors pass later levels unamplified, so
//! ||e||_2 <= ((1 + eta H1)^J - 1) ||v~||_2, divided by sqrt(n) for the normalised coefficient,
//! plus underflow: at most N sigma per output per level (products; sums of subnormals are exact),
//! sum_l sqrt(n_l) N sigma / sqrt(n) <= 3.5 N sigma. Range: every intermediate value is at most
//! H1 (1 + eta H1)^J ||v~||_2; beyond the format's max the bound is infinite (a range failure).
//!
//! ## The f64 table in place of dbN
//! Everything above runs with the f64 table h~, whose levels L~ are not exactly orthogonal and
//! not exactly dbN's. Two certified numbers (`super::wavelet_constants`) charge for it:
//! ||L~||_2 <= nu = sqrt(1 + D) (D the table's orthonormality defect, [`Wavelet::table_defect`])
//! and ||L - L~||_2 <= 2N r (r the table-to-dbN distance). So: the arithmetic terms carry
//! nu^J ([`Wavelet::table_gain`]); gamma is the table's inverse DWT computed in f64, and the
//! sums over |gamma_i| add ||fl(gamma) - gamma||_2 ||e||_2; and the coefficient a bound is about
//! is dbN's, which differs from the table's sum_i a_i gamma_i by at most
//! ||W - W~||_2 ||a||_2 <= J 2N r nu^(J-1) M ([`Wavelet::table_to_exact`]; ||a||_2 <= ||v||_L2
//! <= M by Bessel). Proofs in docs/bounds.md ("The f64 table in place of dbN").

pub use super::wavelet_constants::ShapeConstants;
use super::{
    Basis, BasisError, Continuous, DomainFunction, ModeConstants, Quadrature, check_model, gamma,
    infinite, model_output, round_samples,
};
use super::{quadrature_note, quadrature_of};
use crate::bounds::PrecisionBound;
use crate::fft::{Complex, ModelOutput};
use crate::functions::quad::QuadOptions;
use crate::precision::{Format, Model, Overflow, Real, round};
use std::collections::HashMap;
use std::f64::consts::FRAC_1_SQRT_2;
use std::sync::{Arc, Mutex, OnceLock};

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

    /// Forward transform in place (unnormalised: the input is a_J as given), scratch of length
    /// at least n; `store` rounds every level's output array to a format (model II). Returns
    /// whether a saturating format clipped a value.
    pub fn forward(&self, x: &mut [T], scratch: &mut [T], store: Option<Format>) -> bool {
        assert_eq!(
            x.len(),
            self.n,
            "DWT of length {} given {}",
            self.n,
            x.len()
        );
        let mut clipped = false;
        let taps = self.h.len();
        let mut len = self.n;
        while len >= 2 {
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
                scratch[k] = a;
                scratch[half + k] = d;
            }
            if let Some(fmt) = store {
                for v in &mut scratch[..len] {
                    let r = round(v.to_f64(), fmt);
                    clipped |= fmt.overflow() == Overflow::Saturate && r.abs() >= fmt.max_finite();
                    *v = T::from_f64(r);
                }
            }
            x[..len].copy_from_slice(&scratch[..len]);
            len = half;
        }
        clipped
    }

    /// Inverse transform in place (the transpose of [`Dwt::forward`]), scratch of length at least
    /// n.
    pub fn inverse(&self, c: &mut [T], scratch: &mut [T]) {
        assert_eq!(
            c.len(),
            self.n,
            "DWT of length {} given {}",
            self.n,
            c.len()
        );
        let taps = self.h.len();
        let mut half = 1;
        while half < self.n {
            let len = 2 * half;
            for v in &mut scratch[..len] {
                *v = T::zero();
            }
            for k in 0..half {
                let (a, d) = (c[k], c[half + k]);
                let start = 2 * k as isize + self.offset;
                for m in 0..taps {
                    let i = (start + m as isize).rem_euclid(len as isize) as usize;
                    scratch[i] += self.h[m] * a + self.g[m] * d;
                }
            }
            c[..len].copy_from_slice(&scratch[..len]);
            half = len;
        }
    }
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

/// The wavelet basis on the grid x_i = i / n, n = 2^J.
pub struct WaveletBasis {
    wavelet: Wavelet,
    n: usize,
    plan: Dwt<f64>,
    /// gamma = inverse DWT of each mode's unit vector (see module docs), cached.
    gammas: Mutex<HashMap<usize, Arc<Vec<f64>>>>,
}

impl WaveletBasis {
    /// Plan for n = 2^J samples.
    pub fn new(wavelet: Wavelet, n: usize) -> Result<Self, BasisError> {
        Ok(WaveletBasis {
            wavelet,
            n,
            plan: Dwt::new(wavelet, n)?,
            gammas: Mutex::new(HashMap::new()),
        })
    }
    /// The wavelet.
    pub fn wavelet(&self) -> Wavelet {
        self.wavelet
    }
    fn gamma(&self, index: usize) -> Arc<Vec<f64>> {
        if let Some(g) = self.gammas.lock().expect("poisoned").get(&index) {
            return g.clone();
        }
        let g = Arc::new(unit_inverse(&self.plan, index));
        self.gammas
            .lock()
            .expect("poisoned")
            .insert(index, g.clone());
        g
    }
    /// f64 rounding error of one unnormalised DWT per normalised coefficient, relative to rms(v).
    fn f64_rel(&self) -> f64 {
        f64_levels_error(self.wavelet, self.plan.levels as f64)
    }
    /// How large the f64 filter sums of samples bounded by `max_abs` may grow: each level's
    /// reach at most sum |h_k| = h1 times the previous level's largest value, over
    /// ceil(log2 n) levels (with a 1e-6 margin for the powers' rounding).
    fn filter_reach(&self, max_abs: f64) -> f64 {
        max_abs * self.wavelet.h1().powf((self.n as f64).log2().ceil()) * (1.0 + 1e-6)
    }
}

fn unit_inverse(plan: &Dwt<f64>, index: usize) -> Vec<f64> {
    let mut e = vec![0.0; plan.len()];
    e[index] = 1.0;
    let mut scratch = vec![0.0; plan.len()];
    plan.inverse(&mut e, &mut scratch);
    e
}

fn run_in<T: Real>(w: Wavelet, samples: &[f64], store: Option<Format>) -> (Vec<f64>, bool) {
    let plan = Dwt::<T>::new(w, samples.len()).expect("validated length");
    let mut x: Vec<T> = samples.iter().map(|&v| T::from_f64(v)).collect();
    let mut scratch = vec![T::zero(); x.len()];
    let clipped = plan.forward(&mut x, &mut scratch, store);
    (x.iter().map(|v| v.to_f64()).collect(), clipped)
}

impl Basis for WaveletBasis {
    fn family(&self) -> String {
        self.wavelet.name()
    }
    fn size(&self) -> usize {
        self.n
    }
    fn dim(&self) -> usize {
        1
    }
    fn num_samples(&self) -> usize {
        self.n
    }
    fn num_coeffs(&self) -> usize {
        self.n
    }
    fn quadrature(&self) -> Quadrature {
        Quadrature {
            nodes: (0..self.n)
                .map(|i| vec![i as f64 / self.n as f64])
                .collect(),
            weights: vec![1.0 / self.n as f64; self.n],
        }
    }
    fn mode(&self, index: usize) -> Vec<i64> {
        index_mode(index)
    }
    fn index(&self, mode: &[i64]) -> Result<usize, BasisError> {
        mode_index(mode, self.plan.levels)
    }
    fn forward(&self, samples: &[f64]) -> Vec<Complex<f64>> {
        let (c, _) = run_in::<f64>(self.wavelet, samples, None);
        let s = 1.0 / (self.n as f64).sqrt();
        c.iter().map(|&v| Complex::new(v * s, 0.0)).collect()
    }
    fn forward_model(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
    ) -> Result<ModelOutput, BasisError> {
        check_model(&self.family(), model)?;
        let (raw, clipped) = match model {
            Model::Input => {
                let (r, overflow, sat) = round_samples(samples, fmt);
                if overflow {
                    return Ok(model_output(vec![Complex::new(f64::NAN, 0.0); self.n], sat));
                }
                (run_in::<f64>(self.wavelet, &r, None).0, sat)
            }
            Model::Storage => {
                let (r, _, sat) = round_samples(samples, fmt);
                let (c, clip) = run_in::<f64>(self.wavelet, &r, Some(fmt));
                (c, sat | clip)
            }
            _ => {
                let w = self.wavelet;
                crate::with_real!(fmt, T => run_in::<T>(w, samples, None))
            }
        };
        let s = 1.0 / (self.n as f64).sqrt();
        Ok(model_output(
            raw.iter().map(|&v| Complex::new(v * s, 0.0)).collect(),
            clipped,
        ))
    }
    fn inverse(&self, coeffs: &[Complex<f64>]) -> Vec<f64> {
        let s = (self.n as f64).sqrt();
        let mut c: Vec<f64> = coeffs.iter().map(|z| z.re * s).collect();
        let mut scratch = vec![0.0; self.n];
        self.plan.inverse(&mut c, &mut scratch);
        c
    }
    fn continuous(&self, f: &dyn DomainFunction, modes: &[Vec<i64>]) -> Vec<Continuous> {
        let family = self.family();
        let mut fine: Option<(Vec<f64>, u32)> = None;
        modes
            .iter()
            .map(|mode| {
                if let Some(c) = f.exact_coefficient(&family, mode) {
                    return c;
                }
                let (j, k) = (mode[0], mode[1]);
                if self.wavelet.order == 1 {
                    return haar_coefficient(f, j, k);
                }
                let (coeffs, r) = fine.get_or_insert_with(|| {
                    let r = (self.n.trailing_zeros() + 4).max(20);
                    (fine_projection(self.wavelet, f, r), r)
                });
                let idx = mode_index(mode, *r).expect("mode exists at the finer level");
                let err = projection_error(self.wavelet, f, *r, idx, true);
                Continuous {
                    value: Complex::new(coeffs[idx], 0.0),
                    abs_err: err,
                    how: format!(
                        "continuous coefficient by projection at level {r} (2^{r} centred samples) and the f64 DWT; error bound {err:.1e}"
                    ),
                }
            })
            .collect()
    }
    fn constants(&self, mode: &[i64]) -> ModeConstants {
        let c = self.wavelet.shape();
        let j = mode[0];
        if j < 0 {
            // Periodised phi_{0,0} = 1.
            return ModeConstants {
                sup_norm: 1.0,
                lipschitz: 0.0,
                breaks: Vec::new(),
            };
        }
        let scale = 2f64.powi(j as i32);
        let breaks = if self.wavelet.order == 1 {
            let a = mode[1] as f64 / scale;
            vec![a, a + 0.5 / scale, a + 1.0 / scale]
        } else {
            Vec::new()
        };
        ModeConstants {
            sup_norm: scale.sqrt() * c.psi_sup,
            // Not certified (no wavelet bound takes it): Haar jumps, db2 is only Hoelder-0.55,
            // and a proven Lipschitz constant of the smoother ones needs phi' enclosed as well.
            lipschitz: f64::INFINITY,
            breaks,
        }
    }
    fn discretization_bound(&self, f: &dyn DomainFunction, samples: &[f64], mode: &[i64]) -> f64 {
        let idx = match self.index(mode) {
            Ok(i) => i,
            Err(_) => return f64::NAN,
        };
        let m = f.sup();
        // The f64 transform overflows past f64's maximum (see precision_bound): no bound.
        let (max_abs, norm2) = crate::bounds::max_and_norm(samples);
        if self.filter_reach(max_abs) > f64::MAX {
            return f64::INFINITY;
        }
        let rms = norm2 / (self.n as f64).sqrt();
        projection_bound(self.wavelet, f, self.plan.levels, &self.gamma(idx), false)
            + 2.0 * self.f64_rel() * rms.max(m)
    }
    fn precision_bound(
        &self,
        samples: &[f64],
        fmt: Format,
        model: Model,
        mode: &[i64],
    ) -> PrecisionBound {
        if model == Model::ArithmeticScaled {
            return infinite("arithmetic-scaled is not defined for wavelets".into());
        }
        if model == Model::Gemm {
            return infinite("gemm is not defined for wavelets".into());
        }
        let idx = match self.index(mode) {
            Ok(i) => i,
            Err(e) => return infinite(e.to_string()),
        };
        let g = self.gamma(idx);
        let n = self.n as f64;
        let sq = n.sqrt();
        let (u, sigma) = if fmt == Format::Fp64 {
            (0.0, 0.0)
        } else {
            (fmt.unit_roundoff(), fmt.min_subnormal())
        };
        let (max_abs, norm2) = crate::bounds::max_and_norm(samples);
        // Past f64's maximum the transforms (and the reference) overflow.
        if self.filter_reach(max_abs) > f64::MAX {
            return infinite(format!(
                "range: the f64 filter sums may reach M h1^levels (M = {max_abs:e}, h1 = {:.4}, \
                 {} levels), beyond f64 max {:e}",
                self.wavelet.h1(),
                n.log2().ceil(),
                f64::MAX
            ));
        }
        let f64_rel = self.f64_rel();
        let f64_ref = f64_rel * norm2 / sq;
        let probabilistic = crate::bounds::input_rounding_probabilistic(fmt, max_abs, self.n, 1e-3);
        if max_abs > fmt.max_finite() {
            return PrecisionBound {
                bound: f64::INFINITY,
                probabilistic,
                note: format!(
                    "range: M = {max_abs:e} exceeds {fmt} max {:e}",
                    fmt.max_finite()
                ),
            };
        }
        let weighted: f64 = g.iter().zip(samples).map(|(a, v)| a.abs() * v.abs()).sum();
        let g1: f64 = g.iter().map(|a| a.abs()).sum();
        // g is the table's inverse DWT computed in f64, within f64_rel (relative, 2-norm) of
        // the exact one: charge it against ||delta||_2 <= u ||v||_2 + sigma/2 sqrt(n).
        let g_err = f64_rel * (u * norm2 + 0.5 * sigma * sq);
        let input = (u * weighted + 0.5 * sigma * g1 + g_err) / sq;
        if model == Model::Input {
            return PrecisionBound {
                bound: input + 2.0 * f64_ref,
                probabilistic,
                note: String::new(),
            };
        }
        let taps = self.wavelet.lowpass().len() as f64;
        let u64 = Format::Fp64.unit_roundoff();
        let eta64 = u64 + gamma(taps, u64) * (1.0 + u64);
        // Filter taps below the format's smallest normal number are rounded with an absolute
        // error of up to sigma/2 (not u |h|): k such taps add k sigma to the level's gain.
        let small = self
            .wavelet
            .lowpass()
            .iter()
            .filter(|h| h.abs() < fmt.min_normal())
            .count() as f64;
        let eta = if model == Model::Storage {
            (u + eta64 * (1.0 + u)) * self.wavelet.h1()
        } else {
            (u + gamma(taps, u) * (1.0 + u)) * self.wavelet.h1() + small * sigma
        };
        let levels = self.plan.levels as i32;
        let growth = (1.0 + eta).powi(levels);
        // The table's levels are not exactly orthogonal: each has norm <= nu, and
        // (nu + eta)^J - nu^J <= nu^J ((1 + eta)^J - 1).
        let nu_j = self.wavelet.table_gain(levels as f64);
        if !growth.is_finite() || eta.is_infinite() {
            return PrecisionBound {
                bound: f64::INFINITY,
                probabilistic,
                note: format!(
                    "no finite bound: 2N u >= 1 for {} in {fmt}",
                    self.wavelet.name()
                ),
            };
        }
        let norm_rounded = norm2 * (1.0 + u) + 0.5 * sigma * sq;
        let peak = self.wavelet.h1() * nu_j * growth * norm_rounded;
        if peak > fmt.max_finite() {
            return PrecisionBound {
                bound: f64::INFINITY,
                probabilistic,
                note: format!(
                    "range: intermediate values may reach {peak:.3e} (H1 (1+eta)^J ||v||_2) > {fmt} max {:e}",
                    fmt.max_finite()
                ),
            };
        }
        let per_output = if model == Model::Storage {
            0.5 * sigma
        } else {
            self.wavelet.order as f64 * sigma
        };
        let mut level_sum = 0.0;
        let mut len = self.n;
        while len >= 2 {
            level_sum += (len as f64).sqrt();
            len /= 2;
        }
        let underflow = per_output * level_sum * nu_j * growth / sq;
        PrecisionBound {
            bound: input + nu_j * (growth - 1.0) * norm_rounded / sq + underflow + f64_ref,
            probabilistic,
            note: String::new(),
        }
    }
}

/// Haar coefficient <v, psi_{j,k}> by adaptive Gauss-Kronrod on the two halves.
fn haar_coefficient(f: &dyn DomainFunction, j: i64, k: i64) -> Continuous {
    let scale = 2f64.powi(j as i32);
    let a = k as f64 / scale;
    let mid = a + 0.5 / scale;
    let b = a + 1.0 / scale;
    let opts = QuadOptions::default();
    let res = quadrature_of(
        |x| {
            let s = if x < mid { 1.0 } else { -1.0 };
            let v = f.eval(&[x]);
            (s * v, v)
        },
        |p, q| f.panel_bounds(p, q),
        &[a, mid, b],
        &opts,
        0.0,
    );
    let err = res.abs_err.max(opts.abs_tol) * scale.sqrt();
    Continuous {
        value: Complex::new(res.value.re * scale.sqrt(), 0.0),
        abs_err: err,
        how: quadrature_note("adaptive Gauss-Kronrod", err, res.converged),
    }
}

/// The normalised DWT of the level-R projection estimate a_{R,i} = 2^{-R/2} v((i + mu_1)/2^R).
fn fine_projection(w: Wavelet, f: &dyn DomainFunction, r: u32) -> Vec<f64> {
    use rayon::prelude::*;
    let n = 1usize << r;
    let mu1 = w.shape().mu1;
    let scale = 1.0 / (n as f64).sqrt();
    let mut a: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let x = ((i as f64 + mu1) / n as f64).rem_euclid(1.0);
            f.eval(&[x]) * scale
        })
        .collect();
    let plan = Dwt::<f64>::new(w, n).expect("power of two");
    let mut scratch = vec![0.0; n];
    plan.forward(&mut a, &mut scratch, None);
    a
}

/// Error bound of the level-R projection estimate at output index `idx` (centred samples).
fn projection_error(w: Wavelet, f: &dyn DomainFunction, r: u32, idx: usize, centred: bool) -> f64 {
    let plan = Dwt::<f64>::new(w, 1usize << r).expect("power of two");
    let g = unit_inverse(&plan, idx);
    projection_bound(w, f, r, &g, centred) + f64_levels_error(w, r as f64) * f.sup() * 1.01
}

/// Relative f64 rounding error (2-norm) of `levels` DWT levels of `w`'s table, forward or
/// inverse: nu^levels ((1 + eta)^levels - 1) with eta = (u + gamma_{2L}(u)(1 + u)) h1 per level
/// (L filter taps, u = 2^-53) and nu >= the table level's norm ([`Wavelet::table_gain`]).
fn f64_levels_error(w: Wavelet, levels: f64) -> f64 {
    let u = Format::Fp64.unit_roundoff();
    let eta = (u + gamma(2.0 * w.lowpass().len() as f64, u) * (1.0 + u)) * w.h1();
    w.table_gain(levels) * crate::precision::compound(&[(eta, levels)])
}

/// sum_i |gamma_i| |e_i| with |e_i| <= 2^{-J/2} (L C / n + wrap_i J_v A) (module docs), plus
/// what the f64 table costs: ||gamma - fl(gamma~)||_2 ||e||_2 for the computed gamma (f64
/// rounding of the table's inverse DWT) and ||W - W~||_2 M for the table in place of dbN.
fn projection_bound(
    w: Wavelet,
    f: &dyn DomainFunction,
    levels: u32,
    g: &[f64],
    centred: bool,
) -> f64 {
    let c = w.shape();
    let l = f.lipschitz();
    let n = g.len();
    let jump = (f.eval(&[1.0]) - f.eval(&[0.0])).abs();
    let cc = if centred { c.c1 } else { c.c0 };
    let support = w.lowpass().len() - 1;
    let scale = 2f64.powf(-(levels as f64) / 2.0);
    let base = l * cc / n as f64;
    let wrapped = base + jump * c.abs_integral;
    let mut total = 0.0;
    for (i, gi) in g.iter().enumerate() {
        if *gi == 0.0 {
            continue;
        }
        let e = if i + support > n { wrapped } else { base };
        total += gi.abs() * e;
    }
    // ||e||_2 over every cell: support.min(n) of them wrap; scaled by the larger bound
    // (wrapped >= base), so huge functions do not overflow the squares.
    let k = support.min(n) as f64;
    let e2 = if wrapped > 0.0 && wrapped.is_finite() {
        wrapped * ((n as f64 - k) * (base / wrapped).powi(2) + k).sqrt()
    } else {
        wrapped
    };
    let rounding = f64_levels_error(w, levels as f64) * e2;
    // ||a||_2 <= ||v||_{L2} <= M for a_i = <v, phi_{J,i}> (Bessel).
    let table = w.table_to_exact(levels as f64) * f.sup();
    (total + rounding) * scale + table
}
