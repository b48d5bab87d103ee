//! Real-hardware cross-check: half-precision cuFFT errors measured on an H100
//! (bench/results/gpu_cufft_fp16_h100.csv, written by scripts/gpu_cufft_fp16.py on the GPU
//! machine) lie within mpno's bounds computed for the same samples. Needs no GPU: it checks the
//! committed measurements.

use mpno::bounds;
use mpno::fft::Algorithm;
use mpno::precision::{Format, Model};

#[test]
fn cufft_fp16_errors_are_within_mpno_bounds() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/bench/results/gpu_cufft_fp16_h100.csv"
    );
    let mut rdr = csv::Reader::from_path(path).expect("committed GPU results");
    let (mut checked, mut overflowed, mut worst) = (0, 0, 0.0f64);
    for rec in rdr.records() {
        let r = rec.unwrap();
        let s: usize = r[1].parse().unwrap();
        let measured: f64 = r[4].parse().unwrap();
        let (max_abs, mean_abs): (f64, f64) = (r[5].parse().unwrap(), r[6].parse().unwrap());
        let model = match &r[3] {
            "cufft-fp16" => Model::Arithmetic,
            "input-fp16" => Model::Input,
            other => panic!("unknown model {other}"),
        };
        let b = bounds::precision(
            &[s],
            Algorithm::Radix2,
            Format::Fp16,
            model,
            mean_abs,
            max_abs,
        );
        if measured.is_finite() {
            assert!(
                measured <= b.bound,
                "{} s={s} mode {} {}: {measured:e} > bound {:e}",
                &r[0],
                &r[2],
                &r[3],
                b.bound
            );
            if b.bound.is_finite() {
                worst = worst.max(measured / b.bound);
            }
        } else {
            assert!(
                b.bound.is_infinite() && b.note.contains("range"),
                "{r:?}: {b:?}"
            );
            overflowed += 1;
        }
        checked += 1;
    }
    println!("{checked} rows checked, {overflowed} overflowed, max measured/bound {worst:.3}");
    assert!(checked >= 1000 && overflowed > 0);
}
