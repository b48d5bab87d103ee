//! Rounding against independent implementations: the `half` crate (fp16, bf16) and `float8`
//! (E4M3, E5M2), exhaustively over their bit patterns, plus ties, subnormals, overflow, the unit
//! roundoff bound on random normal-range values, and the fast f32 path against the exact one.

use float8::{F8E4M3, F8E5M2};
use half::{bf16, f16};
use mpno::precision::*;
use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// Every fp16 / bf16 bit pattern is a fixed point of our rounding, and each midpoint between two
/// neighbours rounds exactly as `half` rounds it (ties to even), as do points just off the midpoint.
#[test]
fn exhaustive_fp16_bf16_against_half() {
    for bits in 0..=u16::MAX {
        let h = f16::from_bits(bits);
        let x = h.to_f64();
        assert!(
            same(round(x, Format::Fp16), x),
            "fp16 pattern {bits:#06x} not fixed"
        );
        assert!(same(round_f32::<Fp16>(x as f32) as f64, x));
        let b = bf16::from_bits(bits);
        let y = b.to_f64();
        assert!(
            same(round(y, Format::Bf16), y),
            "bf16 pattern {bits:#06x} not fixed"
        );
        assert!(same(round_f32::<Bf16>(y as f32) as f64, y));
        // Midpoints and near-midpoints to the next pattern (same sign, increasing magnitude).
        if bits & 0x7fff < 0x7bff {
            let next = f16::from_bits(bits + 1).to_f64();
            // `half` converts f64 by first truncating the low 32 mantissa bits, so it is only
            // correctly rounded where those are zero: compare on f32-representable points.
            let mid = (0.5 * (x + next)) as f32;
            for z in [mid, mid.next_up(), mid.next_down()] {
                let z = z as f64;
                let ours = round(z, Format::Fp16);
                let theirs = f16::from_f32(z as f32).to_f64();
                assert!(
                    same(ours, theirs),
                    "fp16 {z:e}: ours {ours:e} half {theirs:e}"
                );
                let fast = round_f32::<Fp16>(z as f32) as f64;
                assert!(same(fast, round(z as f32 as f64, Format::Fp16)));
            }
        }
        if bits & 0x7fff < 0x7f7f {
            let next = bf16::from_bits(bits + 1).to_f64();
            let mid = (0.5 * (y + next)) as f32;
            for z in [mid, mid.next_up(), mid.next_down()] {
                let z = z as f64;
                let ours = round(z, Format::Bf16);
                let theirs = bf16::from_f32(z as f32).to_f64();
                assert!(
                    same(ours, theirs),
                    "bf16 {z:e}: ours {ours:e} half {theirs:e}"
                );
            }
        }
    }
}

/// Every fp8 pattern is fixed, and rounding of midpoints and random values matches `float8`,
/// whose conversions saturate (so compare with E4M3Sat and saturating E5M2).
#[test]
fn exhaustive_fp8_against_float8() {
    for bits in 0..=u8::MAX {
        let x = F8E4M3::from_bits(bits).to_f64();
        assert!(same(round(x, Format::E4m3), x), "e4m3 {bits:#04x}");
        assert!(same(round(x, Format::E4m3Sat), x));
        assert!(same(round_f32::<E4m3>(x as f32) as f64, x));
        let y = F8E5M2::from_bits(bits).to_f64();
        assert!(same(round(y, Format::E5m2), y), "e5m2 {bits:#04x}");
        assert!(same(round_f32::<E5m2>(y as f32) as f64, y));
        if bits & 0x7f < 0x7e {
            let next = F8E4M3::from_bits(bits + 1).to_f64();
            let mid = 0.5 * (x + next);
            for z in [mid, mid.next_up(), mid.next_down()] {
                let ours = round(z, Format::E4m3Sat);
                let theirs = F8E4M3::from_f64(z).to_f64();
                assert!(
                    same(ours, theirs),
                    "e4m3 {z:e}: ours {ours} float8 {theirs}"
                );
            }
        }
        if bits & 0x7f < 0x7b {
            let next = F8E5M2::from_bits(bits + 1).to_f64();
            let mid = 0.5 * (y + next);
            for z in [mid, mid.next_up(), mid.next_down()] {
                let ours = round_with(z, Format::E5m2, Overflow::Saturate);
                let theirs = F8E5M2::from_f64(z).to_f64();
                assert!(
                    same(ours, theirs),
                    "e5m2 {z:e}: ours {ours} float8 {theirs}"
                );
            }
        }
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(8);
    for _ in 0..200_000 {
        let z = (rng.random::<f64>() - 0.5) * 2f64.powi(rng.random_range(-14..12));
        assert!(
            same(round(z, Format::E4m3Sat), F8E4M3::from_f64(z).to_f64()),
            "{z:e}"
        );
        let s = round_with(z, Format::E5m2, Overflow::Saturate);
        assert!(same(s, F8E5M2::from_f64(z).to_f64()), "{z:e}");
    }
}

/// Where `half` truncates (f64 just above an fp16 midpoint, the excess only in the low 32 bits),
/// the exact rounding goes up, as round-to-nearest requires.
#[test]
fn half_f64_truncation_is_not_ours() {
    let s = Format::Fp16.min_subnormal();
    let z = (0.5 * s).next_up();
    assert_eq!(round(z, Format::Fp16), s);
    assert_eq!(
        f16::from_f64(z).to_f64(),
        0.0,
        "half's documented truncation"
    );
}

#[test]
fn ties_subnormals_and_overflow() {
    // Ties to even at 1: 1 + u is halfway between 1 and 1 + 2u.
    for fmt in [
        Format::Fp16,
        Format::Bf16,
        Format::Tf32,
        Format::E5m2,
        Format::E4m3,
    ] {
        let u = fmt.unit_roundoff();
        assert_eq!(round(1.0 + u, fmt), 1.0, "{fmt}");
        assert_eq!(round(1.0 + 3.0 * u, fmt), 1.0 + 4.0 * u, "{fmt}");
        assert_eq!(round((1.0 + u).next_up(), fmt), 1.0 + 2.0 * u, "{fmt}");
        // Subnormals: the smallest one is representable, half of it ties to 0, a bit more rounds up.
        let s = fmt.min_subnormal();
        assert_eq!(round(s, fmt), s, "{fmt}");
        assert_eq!(round(0.5 * s, fmt), 0.0, "{fmt}");
        assert_eq!(round(1.5 * s, fmt), 2.0 * s, "{fmt}");
        assert_eq!(round(0.5 * s * (1.0 + 1e-9), fmt), s, "{fmt}");
        assert_eq!(
            round(-0.25 * s, fmt).to_bits(),
            (-0.0f64).to_bits(),
            "{fmt}"
        );
        // Below min normal the spacing is constant.
        let mn = fmt.min_normal();
        assert_eq!(round(mn - 0.4 * s, fmt), mn, "{fmt}");
        // Overflow: max is fixed, just above it rounds back, half an ulp above it overflows.
        let max = fmt.max_finite();
        assert_eq!(round(max, fmt), max);
        let ulp = pow2(fmt.emax() - fmt.precision() as i32 + 1);
        assert_eq!(round(max + 0.49 * ulp, fmt), max, "{fmt}");
        // E4M3's max 1.75 * 2^8 has an even significand, so its half-ulp tie rounds down.
        let tie = round(max + 0.5 * ulp, fmt);
        assert!(
            tie.is_nan() || tie.is_infinite() || (fmt == Format::E4m3 && tie == max),
            "{fmt}"
        );
        let over = round(max + 0.51 * ulp, fmt);
        match fmt.overflow() {
            Overflow::Inf => assert_eq!(over, f64::INFINITY, "{fmt}"),
            Overflow::Nan => assert!(over.is_nan(), "{fmt}"),
            Overflow::Saturate => assert_eq!(over, max),
        }
        assert_eq!(round_with(-1e300, fmt, Overflow::Saturate), -max);
        assert!(round(f64::NAN, fmt).is_nan());
    }
    assert_eq!(round(65519.99, Format::Fp16), 65504.0);
    assert_eq!(round(65520.0, Format::Fp16), f64::INFINITY);
    assert_eq!(round(464.0, Format::E4m3), 448.0);
    assert!(round(465.0, Format::E4m3).is_nan());
    assert_eq!(round(465.0, Format::E4m3Sat), 448.0);
    assert_eq!(round(61439.0, Format::E5m2), 57344.0);
    assert_eq!(round(61440.0, Format::E5m2), f64::INFINITY);
    assert!(round(f64::INFINITY, Format::E4m3).is_nan());
    assert_eq!(round(f64::NEG_INFINITY, Format::Fp16), f64::NEG_INFINITY);
}

#[test]
fn format_constants() {
    let f = |fmt: Format| {
        (
            fmt.unit_roundoff(),
            fmt.max_finite(),
            fmt.min_normal(),
            fmt.min_subnormal(),
        )
    };
    assert_eq!(
        f(Format::Fp16),
        (2f64.powi(-11), 65504.0, 2f64.powi(-14), 2f64.powi(-24))
    );
    assert_eq!(f(Format::Bf16).0, 2f64.powi(-8));
    assert_eq!(Format::Bf16.max_finite(), bf16::MAX.to_f64());
    assert_eq!(Format::Fp32.max_finite(), f32::MAX as f64);
    assert_eq!(Format::Fp32.min_subnormal(), 2f64.powi(-149));
    assert_eq!(
        f(Format::E4m3),
        (2f64.powi(-4), 448.0, 2f64.powi(-6), 2f64.powi(-9))
    );
    assert_eq!(
        f(Format::E5m2),
        (2f64.powi(-3), 57344.0, 2f64.powi(-14), 2f64.powi(-16))
    );
    assert_eq!(Format::E4m3.max_finite(), F8E4M3::from_bits(0x7e).to_f64());
    assert_eq!(Format::E5m2.max_finite(), F8E5M2::from_bits(0x7b).to_f64());
    assert_eq!(Format::Tf32.unit_roundoff(), 2f64.powi(-11));
    assert_eq!(
        Format::Tf32.max_finite(),
        (2.0 - 2f64.powi(-10)) * 2f64.powi(127)
    );
    for fmt in Format::ALL {
        assert_eq!(fmt.name().parse::<Format>().unwrap(), fmt);
    }
    let err = "fp7".parse::<Format>().unwrap_err().to_string();
    assert!(
        err.contains("fp7") && err.contains("fp16") && err.contains("e4m3"),
        "{err}"
    );
}

/// On 10^6 random normal-range values, |round(x) - x| <= u |x| in every format, and the fast
/// f32 path equals the exact path on f32 inputs.
#[test]
fn unit_roundoff_bound_random() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2024);
    for fmt in Format::ALL {
        let u = fmt.unit_roundoff();
        let (lo, hi) = (fmt.min_normal().log2(), fmt.max_finite().log2() - 1.0);
        for _ in 0..1_000_000 / Format::ALL.len() {
            let e = lo + (hi - lo) * rng.random::<f64>();
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            let x = sign * e.exp2();
            let r = round(x, fmt);
            assert!((r - x).abs() <= u * x.abs(), "{fmt}: {x:e} -> {r:e}");
        }
    }
    for _ in 0..300_000 {
        let x = f32::from_bits(rng.random::<u32>());
        let check = |fast: f32, fmt: Format| {
            let exact = round(x as f64, fmt);
            assert!(
                same(fast as f64, exact),
                "{fmt} {x:e}: fast {fast:e} exact {exact:e}"
            );
        };
        check(round_f32::<Fp16>(x), Format::Fp16);
        check(round_f32::<Bf16>(x), Format::Bf16);
        check(round_f32::<Tf32>(x), Format::Tf32);
        check(round_f32::<E5m2>(x), Format::E5m2);
        check(round_f32::<E4m3>(x), Format::E4m3);
        check(round_f32::<E4m3Sat>(x), Format::E4m3Sat);
    }
}

/// Emulated arithmetic is correctly rounded: every pair of fp8 values under + - * / equals the
/// exact f64 result rounded once; random pairs for fp16, bf16, tf32 (including tiny products).
#[test]
fn emulated_ops_correctly_rounded() {
    fn check<F: LowFormat>(a: f32, b: f32) {
        let (x, y) = (Emu::<F>::from_raw(a), Emu::<F>::from_raw(b));
        let (a, b) = (a as f64, b as f64);
        let cases = [
            (x + y, a + b),
            (x - y, a - b),
            (x * y, a * b),
            (x / y, a / b),
        ];
        for (i, (got, exact)) in cases.into_iter().enumerate() {
            let want = round(exact, F::FORMAT);
            assert!(
                same(got.to_f64(), want),
                "{} op {i}: {a:e}, {b:e}: got {:e} want {want:e}",
                F::FORMAT,
                got.to_f64()
            );
        }
    }
    for i in 0..=u8::MAX {
        for j in 0..=u8::MAX {
            let (a, b) = (F8E4M3::from_bits(i).to_f32(), F8E4M3::from_bits(j).to_f32());
            if !a.is_nan() && !b.is_nan() {
                check::<E4m3>(a, b);
                check::<E4m3Sat>(a, b);
            }
            let (a, b) = (F8E5M2::from_bits(i).to_f32(), F8E5M2::from_bits(j).to_f32());
            if a.is_finite() && b.is_finite() {
                check::<E5m2>(a, b);
            }
        }
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
    for _ in 0..300_000 {
        let a = f16::from_bits(rng.random::<u16>() & 0x7bff | rng.random::<u16>() & 0x8000);
        let b = f16::from_bits(rng.random::<u16>() & 0x7bff);
        check::<Fp16>(a.to_f32(), b.to_f32());
        let a = bf16::from_bits(rng.random::<u16>() & 0x7f7f);
        let b = bf16::from_bits(rng.random::<u16>() & 0x7f7f | 0x8000);
        check::<Bf16>(a.to_f32(), b.to_f32());
        let t = |x: u32| round_f32::<Tf32>(f32::from_bits(x & 0x7f7f_ffff));
        check::<Tf32>(t(rng.random()), t(rng.random()));
    }
}

#[test]
fn stochastic_rounding_is_unbiased_and_seeded() {
    let x = 1.0 + 0.3 * Format::Fp16.epsilon();
    let (lo, hi) = neighbours(x, Format::Fp16);
    assert_eq!((lo, hi), (1.0, 1.0 + Format::Fp16.epsilon()));
    let run = |seed| {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..100_000)
            .map(|_| round_stochastic(x, Format::Fp16, &mut rng))
            .collect::<Vec<_>>()
    };
    let a = run(1);
    assert_eq!(a, run(1), "same seed, same roundings");
    assert!(a.iter().all(|&r| r == lo || r == hi));
    let p_up = a.iter().filter(|&&r| r == hi).count() as f64 / a.len() as f64;
    // Binomial standard error sqrt(0.3 * 0.7 / 1e5) = 1.45e-3: 5 sigma.
    assert!((p_up - 0.3).abs() < 5.0 * 1.45e-3, "p_up = {p_up}");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    assert_eq!(round_stochastic(0.5, Format::E4m3, &mut rng), 0.5);
}

#[test]
fn accumulation_format() {
    type H = Emu<Fp16>;
    // 4096 ones: an fp16 accumulator stalls at 2048 (2048 + 1 ties to even), fp32 does not.
    let xs = vec![H::from_f64(1.0); 4096];
    assert_eq!(sum_acc::<H, H>(&xs).to_f64(), 2048.0);
    assert_eq!(sum_acc::<H, f32>(&xs).to_f64(), 4096.0);
    let ys = vec![H::from_f64(0.5); 4096];
    assert_eq!(dot_acc::<H, f32>(&xs, &ys).to_f64(), 2048.0);
}
