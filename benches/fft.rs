//! FFT speed per scalar type: rustfft f32/f64 against mpno's generic FFT in f64 and in emulated
//! fp16 / bf16 (model III: every operation rounded). Run: cargo bench --bench fft
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mpno::fft::{Algorithm, Complex, Direction, Fft};
use mpno::precision::{Bf16, Emu, Fp16, Real};
use std::hint::black_box;

fn ours<T: Real>(c: &mut Criterion, name: &str, n: usize, alg: Algorithm) {
    let plan = Fft::<T>::new(n, Direction::Forward, alg).unwrap();
    let x: Vec<Complex<T>> = (0..n)
        .map(|j| {
            Complex::new(
                T::from_f64(((j * 7919) % 1000) as f64 / 1000.0 - 0.5),
                T::zero(),
            )
        })
        .collect();
    let mut data = x.clone();
    let mut scratch = vec![Complex::new(T::zero(), T::zero()); plan.scratch_len()];
    c.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
        b.iter(|| {
            data.copy_from_slice(&x);
            plan.process_with_scratch(black_box(&mut data), &mut scratch);
        })
    });
}

fn rust_fft<T: rustfft::FftNum + Real>(c: &mut Criterion, name: &str, n: usize) {
    let plan = rustfft::FftPlanner::<T>::new().plan_fft_forward(n);
    let x: Vec<Complex<T>> = (0..n)
        .map(|j| {
            Complex::new(
                <T as Real>::from_f64(((j * 7919) % 1000) as f64 / 1000.0 - 0.5),
                <T as Real>::zero(),
            )
        })
        .collect();
    let mut data = x.clone();
    let mut scratch = vec![
        Complex::new(<T as Real>::zero(), <T as Real>::zero());
        plan.get_inplace_scratch_len()
    ];
    c.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
        b.iter(|| {
            data.copy_from_slice(&x);
            plan.process_with_scratch(black_box(&mut data), &mut scratch);
        })
    });
}

fn benches(c: &mut Criterion) {
    for n in [1usize << 10, 1 << 16, 1 << 20] {
        rust_fft::<f32>(c, "rustfft_f32", n);
        rust_fft::<f64>(c, "rustfft_f64", n);
        ours::<f64>(c, "mpno_radix4_f64", n, Algorithm::Radix4);
        ours::<Emu<Fp16>>(c, "mpno_radix4_fp16_model3", n, Algorithm::Radix4);
        ours::<Emu<Fp16>>(c, "mpno_radix2_fp16_model3", n, Algorithm::Radix2);
        ours::<Emu<Bf16>>(c, "mpno_radix4_bf16_model3", n, Algorithm::Radix4);
    }
    ours::<Emu<Fp16>>(c, "mpno_bluestein_fp16_model3", 10007, Algorithm::Bluestein);
}

criterion_group! {
    name = fft;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = benches
}
criterion_main!(fft);
