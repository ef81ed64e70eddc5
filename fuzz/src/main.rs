//! `avm-fuzz`: bounded mutation fuzzing of avm's parsers (see the crate docs).
//!
//! usage: avm-fuzz [TARGET ...] [--seconds-per-target S] [--seed N] [--root DIR]
//!
//! With no target, every target. For each: mutates the seeds in `<root>/corpus/<target>/` and
//! the crashers in `<root>/crashers/<target>/` for S seconds (default 10), runs every mutant,
//! and writes each input that panics to `<root>/crashers/<target>/<sha256-prefix>` (a new
//! regression case: `cargo test -p avm-fuzz` runs every file there). Prints per target:
//! executions, CPU seconds, refusals, panics. Exit code 1 when a panic was found.

use avm_fuzz::mutate::Mutator;
use avm_fuzz::{TARGETS, Target, corpus, run_caught, target};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

struct Args {
    targets: Vec<&'static Target>,
    seconds: f64,
    seed: u64,
    root: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        targets: Vec::new(),
        seconds: 10.0,
        seed: 1,
        root: Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match x.as_str() {
            "--seconds-per-target" => {
                a.seconds = value("--seconds-per-target")?
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0)
                    .ok_or("--seconds-per-target must be a number > 0")?;
            }
            "--seed" => a.seed = value("--seed")?.parse().map_err(|_| "--seed must be a whole number")?,
            "--root" => a.root = PathBuf::from(value("--root")?),
            "--make-seeds" => {
                let root = Path::new(env!("CARGO_MANIFEST_DIR"));
                avm_fuzz::seeds::make(root, &root.join("..")).map_err(|e| format!("{e:#}"))?;
                println!("seeds written under {}", root.join("corpus").display());
                std::process::exit(0);
            }
            "-h" | "--help" => {
                let names: Vec<_> = TARGETS.iter().map(|t| t.name).collect();
                return Err(format!(
                    "usage: avm-fuzz [TARGET ...] [--seconds-per-target S] [--seed N] [--root DIR]\ntargets: {}",
                    names.join(", ")
                ));
            }
            name => a.targets.push(target(name).ok_or_else(|| format!("unknown target {name:?}"))?),
        }
    }
    if a.targets.is_empty() {
        a.targets = TARGETS.iter().collect();
    }
    Ok(a)
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (Linux); wall time elsewhere.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split(' ').collect();
            let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    // A panic is a finding, recorded below: keep the default hook from printing each one.
    std::panic::set_hook(Box::new(|_| {}));
    let scratch = tempfile::tempdir().expect("creating a scratch directory");
    let mut found = 0usize;
    println!("{:<20} {:>10} {:>8} {:>10} {:>7}", "target", "execs", "cpu s", "refused", "panics");
    let (mut total_execs, cpu0) = (0u64, cpu_seconds());
    for t in &args.targets {
        let seeds = corpus(&args.root, t.name);
        if seeds.is_empty() {
            eprintln!("{}: no seeds in {}", t.name, args.root.join("corpus").join(t.name).display());
            std::process::exit(2);
        }
        let mut m = Mutator::new(args.seed ^ (t.name.len() as u64) << 32);
        let (mut execs, mut refused, mut panics) = (0u64, 0u64, 0usize);
        let c0 = cpu_seconds();
        let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
        // The seeds themselves first, then mutants until the deadline.
        let mut inputs: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
        while Instant::now() < deadline || !inputs.is_empty() {
            let input = inputs.pop().unwrap_or_else(|| {
                let a = &seeds[m.below(seeds.len())].1;
                let b = &seeds[m.below(seeds.len())].1;
                m.mutate(a, b)
            });
            execs += 1;
            match run_caught(t, &input, scratch.path()) {
                Ok(Ok(())) => {}
                Ok(Err(_)) => refused += 1,
                Err(msg) => {
                    panics += 1;
                    let name = hex::encode(&sha2::Sha256::digest(&input)[..8]);
                    let dir = args.root.join("crashers").join(t.name);
                    let _ = std::fs::create_dir_all(&dir);
                    let path = dir.join(&name);
                    if !path.exists() {
                        let _ = std::fs::write(&path, &input);
                        eprintln!("{}: PANIC ({msg}); input saved as {}", t.name, path.display());
                    }
                }
            }
        }
        total_execs += execs;
        found += panics;
        println!("{:<20} {:>10} {:>8.1} {:>10} {:>7}", t.name, execs, cpu_seconds() - c0, refused, panics);
    }
    println!(
        "{} targets, {total_execs} executions, {:.1} CPU s, {found} panic(s) (seed {})",
        args.targets.len(),
        cpu_seconds() - cpu0,
        args.seed
    );
    if found > 0 {
        std::process::exit(1);
    }
}
