//! Basis transforms: forward SHT at nlat = 512 (1024 longitudes, lmax = 511) in f64 and in
//! emulated fp16 (model III: FFT, Legendre table and sums in fp16), the Legendre table itself
//! (computed once per plan), and the periodic DWT at n = 2^20 (Haar, db4, db10) in f64 and fp16.
//! Run: cargo bench --bench basis   (results: bench/results/basis_cpu.md)
use criterion::{Criterion, criterion_group, criterion_main};
use mpno::basis::spherical::Sht;
use mpno::basis::wavelet::{Dwt, Wavelet};
use mpno::precision::{Emu, Fp16, Real};
use std::hint::black_box;
use std::time::Duration;

fn samples(n: usize) -> Vec<f64> {
    (0..n)
        .map(|j| ((j * 7919) % 1000) as f64 / 1000.0 - 0.5)
        .collect()
}

fn sht(c: &mut Criterion) {
    let nlat = 512;
    let mut g = c.benchmark_group("sht_nlat512");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("legendre_table_f64", |b| {
        b.iter(|| black_box(Sht::new(black_box(nlat)).unwrap()))
    });
    let plan = Sht::new(nlat).unwrap();
    let x = samples(nlat * 2 * nlat);
    g.bench_function("forward_f64", |b| {
        b.iter(|| black_box(plan.forward_raw(black_box(&x), None)))
    });
    let half = Sht::<Emu<Fp16>>::convert(&plan).unwrap();
    g.bench_function("forward_fp16_model_iii", |b| {
        b.iter(|| black_box(half.forward_raw(black_box(&x), None)))
    });
    g.finish();
}

fn dwt_in<T: Real>(c: &mut Criterion, name: &str, w: Wavelet) {
    let n = 1 << 20;
    let plan = Dwt::<T>::new(w, n).unwrap();
    let x: Vec<T> = samples(n).into_iter().map(T::from_f64).collect();
    let mut data = x.clone();
    let mut scratch = vec![T::zero(); n];
    c.bench_function(&format!("dwt_2^20/{}_{name}", w.name()), |b| {
        b.iter(|| {
            data.copy_from_slice(&x);
            plan.forward(black_box(&mut data), &mut scratch, None);
        })
    });
}

fn dwt(c: &mut Criterion) {
    for w in [
        Wavelet::HAAR,
        Wavelet::daubechies(4).unwrap(),
        Wavelet::daubechies(10).unwrap(),
    ] {
        dwt_in::<f64>(c, "f64", w);
        dwt_in::<Emu<Fp16>>(c, "fp16", w);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .without_plots();
    targets = sht, dwt
}
criterion_main!(benches);
