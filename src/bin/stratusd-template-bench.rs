//! stratusd-template-bench: how long the template parser takes on the hostile texts of
//! `stratusd::template::adversarial` as they double in size. A linear parser keeps its
//! nanoseconds per byte flat across the sizes; a quadratic path doubles them at each step.
//! It only measures (docs/security.md quotes a run); nothing here checks a figure.
//!
//! Usage: cargo run --release --bin stratusd-template-bench [-- SMALLEST_KIB STEPS]

use std::time::Instant;
use stratusd::template::adversarial::adversarial_texts;
use stratusd::template::Template;

/// Repetitions per point; the fastest is reported (the least disturbed by other work).
const RUNS: usize = 5;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let smallest_kib = args.next().map_or(Ok(256), |a| a.parse::<usize>());
    let steps = args.next().map_or(Ok(4), |a| a.parse::<u32>());
    let (Ok(smallest_kib), Ok(steps)) = (smallest_kib, steps) else {
        eprintln!("usage: stratusd-template-bench [SMALLEST_KIB STEPS]");
        return std::process::ExitCode::FAILURE;
    };
    let sizes: Vec<usize> = (0..steps).map(|s| (smallest_kib << 10) << s).collect();
    print!("{:<50}", "text (ns per byte at each size)");
    for size in &sizes {
        print!(" {:>9}", format!("{} KiB", size >> 10));
    }
    println!(" {:>8}", "growth");
    let labels: Vec<&str> = adversarial_texts(64).iter().map(|c| c.label).collect();
    for (index, label) in labels.iter().enumerate() {
        print!("{label:<50}");
        let mut per_byte = Vec::new();
        for &size in &sizes {
            let case = &adversarial_texts(size)[index];
            let fastest = (0..RUNS)
                .map(|_| {
                    let started = Instant::now();
                    let _ = std::hint::black_box(Template::parse(&case.text));
                    started.elapsed()
                })
                .min()
                .unwrap_or_default();
            let ns = fastest.as_nanos() as f64 / case.text.len().max(1) as f64;
            per_byte.push(ns);
            print!(" {ns:>9.2}");
        }
        let growth = match (per_byte.first(), per_byte.last()) {
            (Some(first), Some(last)) if *first > 0.0 => last / first,
            _ => 0.0,
        };
        println!(" {growth:>7.2}x");
    }
    std::process::ExitCode::SUCCESS
}
