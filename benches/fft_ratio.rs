//! Run: cargo bench --bench fft_ratio [-- N]. Min-of-trials timing of one forward FFT (default 2^16): mpno radix-4 (emulated fp16, bf16; f64) against
//! rustfft f32 in the same process, interleaved so that machine load affects both alike.
use mpno::fft::{Algorithm, Complex, Direction, Fft};
use mpno::precision::{Bf16, Emu, Fp16, Real};
use std::time::Instant;

fn input<T: Real>(n: usize) -> Vec<Complex<T>> {
    (0..n)
        .map(|j| {
            Complex::new(
                T::from_f64(((j * 7919) % 1000) as f64 / 1000.0 - 0.5),
                T::zero(),
            )
        })
        .collect()
}

/// One timed run, in seconds.
type Timer<'a> = Box<dyn FnMut() -> f64 + 'a>;

fn ours<T: Real>(n: usize) -> impl FnMut() -> f64 {
    let plan = Fft::<T>::new(n, Direction::Forward, Algorithm::Radix4).unwrap();
    let x = input::<T>(n);
    let mut data = x.clone();
    let mut scratch = vec![Complex::new(T::zero(), T::zero()); plan.scratch_len()];
    move || {
        data.copy_from_slice(&x);
        let t = Instant::now();
        plan.process_with_scratch(&mut data, &mut scratch);
        t.elapsed().as_secs_f64()
    }
}

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1usize << 16);
    let plan = rustfft::FftPlanner::<f32>::new().plan_fft_forward(n);
    let x = input::<f32>(n);
    let mut data = x.clone();
    let mut scratch = vec![Complex::new(0f32, 0f32); plan.get_inplace_scratch_len()];
    let mut rust = move || {
        data.copy_from_slice(&x);
        let t = Instant::now();
        plan.process_with_scratch(&mut data, &mut scratch);
        t.elapsed().as_secs_f64()
    };
    let mut runs: Vec<(&str, Timer)> = vec![
        ("rustfft f32", Box::new(rust_wrap(&mut rust))),
        ("mpno f64", Box::new(ours::<f64>(n))),
        ("mpno fp16 (model III)", Box::new(ours::<Emu<Fp16>>(n))),
        ("mpno bf16 (model III)", Box::new(ours::<Emu<Bf16>>(n))),
    ];
    let mut best = vec![f64::INFINITY; runs.len()];
    for _ in 0..200 {
        for (b, (_, f)) in best.iter_mut().zip(runs.iter_mut()) {
            *b = b.min(f());
        }
    }
    for (b, (name, _)) in best.iter().zip(&runs) {
        println!("{name:24} {:8.1} us  ratio {:5.2}", b * 1e6, b / best[0]);
    }
}

fn rust_wrap(f: &mut impl FnMut() -> f64) -> impl FnMut() -> f64 + '_ {
    move || f()
}
