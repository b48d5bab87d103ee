//! Eight lanes of a [`Real`] scalar, so that kernels (the FFT butterflies) run one vector
//! instruction where the scalar code runs eight, with results bit-identical to the scalar ops.
//!
//! - [`Arr8<T>`]: a plain `[T; 8]` with element-wise operations (LLVM vectorises it for f32/f64).
//! - `EmuV8<F>` (x86-64 with AVX2 + F16C, which `.cargo/config.toml` enables): an `__m256` of f32
//!   values, each operation done in f32 and rounded to `F`. For fp16 the rounding is the hardware
//!   conversion pair `vcvtps2ph` / `vcvtph2ps` (round to nearest even, subnormals and overflow to
//!   inf per IEEE); for the other formats it is [`round_f32`](super::round_f32)'s branch-free
//!   bit manipulation written with AVX2 integer instructions. As for the scalar `Emu`, the f32
//!   intermediate is wide enough (24 >= 2p + 2 bits) that the double rounding is innocuous, and
//!   bf16/tf32 products that fall below 2^-126 (where f32 itself loses bits) are redone per lane in
//!   f64.

use super::scalar::{Emu, LowFormat, Real};
use std::ops::{Add, Mul, Neg, Sub};

/// Number of lanes.
pub const LANES: usize = 8;

/// `[e(0), e(1), .., e(N-1)]` written out: `std::array::from_fn` and `array::map` closures are
/// not always inlined in the hot loops, and an out-of-line call per lane costs more than the
/// arithmetic.
macro_rules! unroll {
    (4, $k:ident => $e:expr) => {
        [
            { let $k = 0usize; $e }, { let $k = 1usize; $e },
            { let $k = 2usize; $e }, { let $k = 3usize; $e },
        ]
    };
    (8, $k:ident => $e:expr) => {
        [
            { let $k = 0usize; $e }, { let $k = 1usize; $e },
            { let $k = 2usize; $e }, { let $k = 3usize; $e },
            { let $k = 4usize; $e }, { let $k = 5usize; $e },
            { let $k = 6usize; $e }, { let $k = 7usize; $e },
        ]
    };
}
pub(crate) use unroll;

/// Eight values of the scalar `T` with `+ - *` and negation rounded exactly as `T`'s own.
pub trait Lanes<T: Real>:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Neg<Output = Self>
{
    /// All lanes equal to `x`.
    fn splat(x: T) -> Self;
    /// Lanes from an array.
    fn from_array(a: [T; LANES]) -> Self;
    /// Lanes into an array.
    fn to_array(self) -> [T; LANES];
    /// Load `s[0..8]` (panics if `s` is shorter).
    #[inline(always)]
    fn load(s: &[T]) -> Self {
        Self::from_array(s[..LANES].try_into().expect("8 lanes"))
    }
    /// Store into `s[0..8]` (panics if `s` is shorter).
    #[inline(always)]
    fn store(self, s: &mut [T]) {
        s[..LANES].copy_from_slice(&self.to_array());
    }
    /// Lanes 0..4 from `s[i0..i0 + 4]`, lanes 4..8 from `s[i1..i1 + 4]`.
    #[inline(always)]
    fn load_halves(s: &[T], i0: usize, i1: usize) -> Self {
        Self::from_array(unroll!(8, k => if k < 4 { s[i0 + k] } else { s[i1 + k - 4] }))
    }
    /// Lanes 0..4 into `s[i0..i0 + 4]`, lanes 4..8 into `s[i1..i1 + 4]`.
    #[inline(always)]
    fn store_halves(self, s: &mut [T], i0: usize, i1: usize) {
        let a = self.to_array();
        s[i0..i0 + 4].copy_from_slice(&a[..4]);
        s[i1..i1 + 4].copy_from_slice(&a[4..]);
    }
    /// From 16 interleaved values `s[i..i + 16]` = (a0, b0, a1, b1, ..): the lanes (a, b).
    #[inline(always)]
    fn load_deinterleave(s: &[T], i: usize) -> (Self, Self) {
        let s = &s[i..i + 2 * LANES];
        (
            Self::from_array(unroll!(8, k => s[2 * k])),
            Self::from_array(unroll!(8, k => s[2 * k + 1])),
        )
    }
    /// Transpose-store four lane vectors: `s[idx[k] + m] = v[m]` lane k, for m < 4, k < 8.
    #[inline(always)]
    fn store_transposed4(v: [Self; 4], s: &mut [T], idx: &[usize; LANES]) {
        let a = unroll!(4, m => v[m].to_array());
        for k in 0..LANES {
            s[idx[k]..idx[k] + 4].copy_from_slice(&[a[0][k], a[1][k], a[2][k], a[3][k]]);
        }
    }
    /// Lane k = `s[idx[k]]` (panics if an index is out of bounds).
    #[inline(always)]
    fn gather(s: &[T], idx: &[usize; LANES]) -> Self {
        Self::from_array(unroll!(8, k => s[idx[k]]))
    }
    /// `s[idx[k]]` = lane k (panics if an index is out of bounds).
    #[inline(always)]
    fn scatter(self, s: &mut [T], idx: &[usize; LANES]) {
        for (&i, x) in idx.iter().zip(self.to_array()) {
            s[i] = x;
        }
    }
}

/// The portable lanes: an array with element-wise operations.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(transparent)]
pub struct Arr8<T>(pub [T; LANES]);

macro_rules! arr8_op {
    ($tr:ident, $f:ident, $op:tt) => {
        impl<T: Real> $tr for Arr8<T> {
            type Output = Self;
            #[inline(always)]
            fn $f(self, o: Self) -> Self {
                Arr8(unroll!(8, k => self.0[k] $op o.0[k]))
            }
        }
    };
}
arr8_op!(Add, add, +);
arr8_op!(Sub, sub, -);
arr8_op!(Mul, mul, *);

impl<T: Real> Neg for Arr8<T> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Arr8(unroll!(8, k => -self.0[k]))
    }
}

impl<T: Real> Lanes<T> for Arr8<T> {
    #[inline(always)]
    fn splat(x: T) -> Self {
        Arr8([x; LANES])
    }
    #[inline(always)]
    fn from_array(a: [T; LANES]) -> Self {
        Arr8(a)
    }
    #[inline(always)]
    fn to_array(self) -> [T; LANES] {
        self.0
    }
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "f16c"
))]
mod avx {
    use super::{Emu, LANES, Lanes, LowFormat};
    use crate::precision::Format;
    use std::arch::x86_64::*;
    use std::marker::PhantomData;
    use std::ops::{Add, Mul, Neg, Sub};

    /// Eight emulated values of format `F` in one AVX register (f32 storage).
    #[derive(Clone, Copy, Debug)]
    #[repr(transparent)]
    pub struct EmuV8<F: LowFormat>(__m256, PhantomData<F>);

    const INF_BITS: i32 = 0x7f80_0000;

    /// Round eight f32 values to `F`, lane for lane equal to `round_f32::<F>`.
    #[inline(always)]
    fn round<F: LowFormat>(x: __m256) -> __m256 {
        // SAFETY: the intrinsics need AVX2 and F16C, which this module's cfg guarantees.
        unsafe {
            if F::FORMAT == Format::Fp16 {
                return _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x));
            }
            let bits = _mm256_castps_si256(x);
            let sign = _mm256_and_si256(bits, _mm256_set1_epi32(i32::MIN));
            let abs = _mm256_and_si256(bits, _mm256_set1_epi32(i32::MAX));
            let shift = 24 - F::P as i32;
            // Normal range: round-to-nearest-even on the bit pattern (see round_f32).
            let lsb = _mm256_and_si256(
                _mm256_srl_epi32(abs, _mm_cvtsi32_si128(shift)),
                _mm256_set1_epi32(1),
            );
            let bias = _mm256_set1_epi32((1 << (shift - 1)) - 1);
            let rn = _mm256_and_si256(
                _mm256_add_epi32(_mm256_add_epi32(abs, bias), lsb),
                _mm256_set1_epi32(!((1 << shift) - 1)),
            );
            // Subnormal range: add and subtract c = 2^23 q.
            let c = _mm256_set1_ps(f32::from_bits(
                ((F::EMIN - F::P as i32 + 1 + 23 + 127) as u32) << 23,
            ));
            let absf = _mm256_castsi256_ps(abs);
            let rs = _mm256_castps_si256(_mm256_sub_ps(_mm256_add_ps(absf, c), c));
            let min_normal = _mm256_set1_epi32((F::EMIN + 127) << 23);
            let sub = _mm256_cmpgt_epi32(min_normal, abs);
            let r = _mm256_blendv_epi8(rn, rs, sub);
            // Overflow: every pattern compared here is below 2^31, so signed compares are exact.
            let ovf = _mm256_cmpgt_epi32(r, _mm256_set1_epi32(F::MAX_BITS as i32));
            let r = _mm256_blendv_epi8(r, _mm256_set1_epi32(F::OVERFLOW_BITS as i32), ovf);
            let nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(INF_BITS));
            let r = _mm256_blendv_epi8(r, abs, nan);
            _mm256_castsi256_ps(_mm256_or_si256(r, sign))
        }
    }

    impl<F: LowFormat> EmuV8<F> {
        #[inline(always)]
        fn wrap(x: __m256) -> Self {
            EmuV8(x, PhantomData)
        }
    }

    impl<F: LowFormat> Add for EmuV8<F> {
        type Output = Self;
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            // SAFETY: AVX is enabled (module cfg).
            Self::wrap(round::<F>(unsafe { _mm256_add_ps(self.0, o.0) }))
        }
    }
    impl<F: LowFormat> Sub for EmuV8<F> {
        type Output = Self;
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            // SAFETY: AVX is enabled (module cfg).
            Self::wrap(round::<F>(unsafe { _mm256_sub_ps(self.0, o.0) }))
        }
    }
    impl<F: LowFormat> Mul for EmuV8<F> {
        type Output = Self;
        #[inline(always)]
        fn mul(self, o: Self) -> Self {
            // SAFETY: AVX is enabled (module cfg).
            let p = unsafe { _mm256_mul_ps(self.0, o.0) };
            if F::F32_RANGE {
                // Products below 2^-126 were already rounded by f32: redo those lanes exactly.
                // SAFETY: AVX is enabled (module cfg).
                let tiny = unsafe {
                    let ap = _mm256_andnot_ps(_mm256_set1_ps(-0.0), p);
                    let lt = _mm256_cmp_ps::<_CMP_LT_OQ>(ap, _mm256_set1_ps(f32::MIN_POSITIVE));
                    let nz = _mm256_cmp_ps::<_CMP_NEQ_UQ>(p, _mm256_setzero_ps());
                    _mm256_movemask_ps(_mm256_and_ps(lt, nz))
                };
                if tiny != 0 {
                    let (a, b) = (self.to_array(), o.to_array());
                    return Self::from_array(unroll!(8, k => a[k] * b[k]));
                }
            }
            Self::wrap(round::<F>(p))
        }
    }
    impl<F: LowFormat> Neg for EmuV8<F> {
        type Output = Self;
        #[inline(always)]
        fn neg(self) -> Self {
            // SAFETY: AVX is enabled (module cfg).
            Self::wrap(unsafe { _mm256_xor_ps(self.0, _mm256_set1_ps(-0.0)) })
        }
    }

    impl<F: LowFormat> Lanes<Emu<F>> for EmuV8<F> {
        #[inline(always)]
        fn splat(x: Emu<F>) -> Self {
            // SAFETY: AVX is enabled (module cfg).
            Self::wrap(unsafe { _mm256_set1_ps(x.raw()) })
        }
        #[inline(always)]
        fn from_array(a: [Emu<F>; LANES]) -> Self {
            // SAFETY: Emu<F> is repr(transparent) over f32, so [Emu<F>; 8] is 8 f32s.
            Self::wrap(unsafe { _mm256_loadu_ps(a.as_ptr() as *const f32) })
        }
        #[inline(always)]
        fn to_array(self) -> [Emu<F>; LANES] {
            let mut a = [0f32; LANES];
            // SAFETY: `a` holds 8 f32s.
            unsafe { _mm256_storeu_ps(a.as_mut_ptr(), self.0) };
            unroll!(8, k => Emu::from_raw(a[k]))
        }
        #[inline(always)]
        fn load(s: &[Emu<F>]) -> Self {
            assert!(s.len() >= LANES);
            // SAFETY: 8 elements are in bounds; Emu<F> is repr(transparent) over f32.
            Self::wrap(unsafe { _mm256_loadu_ps(s.as_ptr() as *const f32) })
        }
        #[inline(always)]
        fn load_halves(s: &[Emu<F>], i0: usize, i1: usize) -> Self {
            let (a, b) = (&s[i0..i0 + 4], &s[i1..i1 + 4]);
            // SAFETY: both 4-element ranges are in bounds (checked above); AVX is enabled.
            Self::wrap(unsafe {
                _mm256_loadu2_m128(b.as_ptr() as *const f32, a.as_ptr() as *const f32)
            })
        }
        #[inline(always)]
        fn store_halves(self, s: &mut [Emu<F>], i0: usize, i1: usize) {
            assert!(i0 + 4 <= s.len() && i1 + 4 <= s.len());
            let p = s.as_mut_ptr() as *mut f32;
            // SAFETY: both 4-element ranges are in bounds (asserted); AVX is enabled.
            unsafe { _mm256_storeu2_m128(p.add(i1), p.add(i0), self.0) }
        }
        #[inline(always)]
        fn load_deinterleave(s: &[Emu<F>], i: usize) -> (Self, Self) {
            let s = &s[i..i + 2 * LANES];
            let p = s.as_ptr() as *const f32;
            // SAFETY: 16 elements are in bounds (sliced above); AVX2 is enabled.
            unsafe {
                let (a, b) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(LANES)));
                // Per 128-bit half: evens (0 2 | 8 10 ..), then put the 64-bit pairs in order.
                let ev = _mm256_shuffle_ps::<0b10_00_10_00>(a, b);
                let od = _mm256_shuffle_ps::<0b11_01_11_01>(a, b);
                let fix = |v: __m256| {
                    _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(v)))
                };
                (Self::wrap(fix(ev)), Self::wrap(fix(od)))
            }
        }
        #[inline(always)]
        fn store_transposed4(v: [Self; 4], s: &mut [Emu<F>], idx: &[usize; LANES]) {
            for &i in idx {
                assert!(i + 4 <= s.len());
            }
            let p = s.as_mut_ptr() as *mut f32;
            // SAFETY: every 4-element target range is in bounds (asserted); AVX is enabled.
            unsafe {
                let t0 = _mm256_unpacklo_ps(v[0].0, v[1].0);
                let t1 = _mm256_unpackhi_ps(v[0].0, v[1].0);
                let t2 = _mm256_unpacklo_ps(v[2].0, v[3].0);
                let t3 = _mm256_unpackhi_ps(v[2].0, v[3].0);
                // u_j holds lane j in its low half and lane j + 4 in its high half.
                let u = [
                    _mm256_shuffle_ps::<0x44>(t0, t2),
                    _mm256_shuffle_ps::<0xee>(t0, t2),
                    _mm256_shuffle_ps::<0x44>(t1, t3),
                    _mm256_shuffle_ps::<0xee>(t1, t3),
                ];
                for (j, u) in u.into_iter().enumerate() {
                    _mm_storeu_ps(p.add(idx[j]), _mm256_castps256_ps128(u));
                    _mm_storeu_ps(p.add(idx[j + 4]), _mm256_extractf128_ps::<1>(u));
                }
            }
        }
        #[inline(always)]
        fn gather(s: &[Emu<F>], idx: &[usize; LANES]) -> Self {
            let g = |k: usize| s[idx[k]].raw();
            // Built in registers (element inserts), not through a stack array, which would stall
            // on store forwarding.
            // SAFETY: AVX is enabled (module cfg).
            Self::wrap(unsafe { _mm256_setr_ps(g(0), g(1), g(2), g(3), g(4), g(5), g(6), g(7)) })
        }
        #[inline(always)]
        fn store(self, s: &mut [Emu<F>]) {
            assert!(s.len() >= LANES);
            // SAFETY: 8 elements are in bounds; Emu<F> is repr(transparent) over f32.
            unsafe { _mm256_storeu_ps(s.as_mut_ptr() as *mut f32, self.0) }
        }
    }
}

/// The lanes type of `Emu<F>` on this target.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "f16c"
))]
pub type EmuLanes<F> = avx::EmuV8<F>;
/// The lanes type of `Emu<F>` on this target (portable fallback).
#[cfg(not(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "f16c"
)))]
pub type EmuLanes<F> = Arr8<Emu<F>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precision::{Bf16, E4m3, E4m3Sat, E5m2, Fp16, Tf32};
    use rand::{RngExt, SeedableRng};

    /// Random values of `F` over its whole range, plus specials, through every lane operation;
    /// each lane must equal the scalar `Emu` operation bit for bit.
    fn check<F: LowFormat>(seed: u64) {
        let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
        let max = F::FORMAT.max_finite();
        let specials = [
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            max,
            -max,
            F::FORMAT.min_subnormal(),
            F::FORMAT.min_normal(),
        ];
        let draw = |rng: &mut rand_xoshiro::Xoshiro256PlusPlus| -> Emu<F> {
            if rng.random_range(0..16) == 0 {
                return Emu::from_f64(specials[rng.random_range(0..specials.len())]);
            }
            let lo = F::FORMAT.min_subnormal().log2();
            let e = rng.random_range(lo - 2.0..max.log2() + 1.0);
            let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
            Emu::from_f64(s * e.exp2())
        };
        let same = |a: Emu<F>, b: Emu<F>| {
            a.raw().to_bits() == b.raw().to_bits() || (a.raw().is_nan() && b.raw().is_nan())
        };
        for _ in 0..20_000 {
            let a: [Emu<F>; LANES] = std::array::from_fn(|_| draw(&mut rng));
            let b: [Emu<F>; LANES] = std::array::from_fn(|_| draw(&mut rng));
            let (va, vb) = (EmuLanes::<F>::from_array(a), EmuLanes::<F>::from_array(b));
            type Op<F> = fn(Emu<F>, Emu<F>) -> Emu<F>;
            let ops: [(EmuLanes<F>, Op<F>); 4] = [
                (va + vb, |x, y| x + y),
                (va - vb, |x, y| x - y),
                (va * vb, |x, y| x * y),
                (-va, |x, _| -x),
            ];
            for (i, (v, f)) in ops.into_iter().enumerate() {
                let got = v.to_array();
                for k in 0..LANES {
                    let want = f(a[k], b[k]);
                    assert!(
                        same(got[k], want),
                        "{:?} op {i}: {:?}, {:?} -> {:?}, scalar {:?}",
                        F::FORMAT,
                        a[k],
                        b[k],
                        got[k],
                        want
                    );
                }
            }
        }
    }

    #[test]
    fn lanes_equal_scalar_ops_in_every_format() {
        check::<Fp16>(1);
        check::<Bf16>(2);
        check::<Tf32>(3);
        check::<E5m2>(4);
        check::<E4m3>(5);
        check::<E4m3Sat>(6);
    }

    #[test]
    fn shuffles_match_the_portable_definitions() {
        let v: Vec<Emu<Fp16>> = (0..64).map(|i| Emu::from_f64(i as f64)).collect();
        let (a, b) = EmuLanes::<Fp16>::load_deinterleave(&v, 6);
        let (pa, pb) = Arr8::<Emu<Fp16>>::load_deinterleave(&v, 6);
        assert_eq!(a.to_array(), pa.to_array());
        assert_eq!(b.to_array(), pb.to_array());
        let idx = [40, 0, 12, 52, 4, 24, 60, 32];
        let vs = unroll!(4, m => EmuLanes::<Fp16>::load(&v[8 * m..]));
        let ps = unroll!(4, m => Arr8::<Emu<Fp16>>::load(&v[8 * m..]));
        let (mut x, mut y) = (vec![Emu::<Fp16>::default(); 64], vec![Emu::default(); 64]);
        EmuLanes::<Fp16>::store_transposed4(vs, &mut x, &idx);
        Arr8::<Emu<Fp16>>::store_transposed4(ps, &mut y, &idx);
        assert_eq!(x, y);
        assert_eq!(&y[40..44], &[0.0, 8.0, 16.0, 24.0].map(Emu::from_f64));
    }

    #[test]
    fn fp16_products_and_sums_of_all_significands() {
        // Every fp16 significand against a fixed set of partners, across exponents that reach
        // subnormal results and overflow: covers ties of every parity.
        let partners = [1.0, 1.5, 0.333, 1e-3, 3e-5, 7e3, 6e4, -2.0, 0.99951171875];
        for bits in 0u16..0x7c00 {
            let x = Emu::<Fp16>::from_f64(half::f16::from_bits(bits).to_f64());
            for &p in &partners {
                let y = Emu::<Fp16>::from_f64(p);
                let (vx, vy) = (EmuLanes::<Fp16>::splat(x), EmuLanes::<Fp16>::splat(y));
                for (v, s) in [(vx + vy, x + y), (vx - vy, x - y), (vx * vy, x * y)] {
                    assert_eq!(v.to_array()[3].raw().to_bits(), s.raw().to_bits());
                }
            }
        }
    }
}
