//! Where the plugin client's time goes: `perf record` with the cpu-clock
//! software event (works in VMs without hardware counters; kernel time
//! included) and valgrind's callgrind (instruction counts, user space only),
//! both on the plugin client at concurrency 1 against the running upstream.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// What to profile: the bench binary's plugin client against `port`.
pub struct Target<'a> {
    pub exe: &'a Path,
    pub library: &'a Path,
    pub port: u16,
    pub chunks: usize,
}

impl Target<'_> {
    fn client_args(&self, n: usize, warmup: usize) -> Vec<String> {
        [
            "--client",
            "plugin",
            "--port",
            &self.port.to_string(),
            "--concurrency",
            "1",
            "--n",
            &n.to_string(),
            "--warmup",
            &warmup.to_string(),
            "--chunks",
            &self.chunks.to_string(),
            "--plugin",
            &self.library.to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn out_file(&self, name: &str) -> std::path::PathBuf {
        self.exe.parent().unwrap_or(Path::new(".")).join(name)
    }
}

/// Samples the plugin client with perf's cpu-clock event and prints the
/// split by shared object and the hottest symbols.
pub fn perf(target: &Target) {
    let out = target.out_file("bench-perf.data");
    let n = 1000;
    eprintln!("bench: profiling the plugin client with perf ({n} completions) ...");
    let recorded = Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-F", "4000", "-o"])
        .arg(&out)
        .arg("--")
        .arg(target.exe)
        .args(target.client_args(n, 10))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match recorded {
        Ok(s) if s.success() => {}
        Ok(s) => return println!("perf profile: perf record failed ({s})\n"),
        Err(e) => return println!("perf profile: perf not available ({e})\n"),
    }
    println!(
        "Profile of the plugin client, perf cpu-clock samples ({n} completions at concurrency 1, whole process; {})",
        out.display()
    );
    for (title, sort, limit, rows) in [
        ("by object", "dso", "0.5", 8),
        ("by symbol", "dso,symbol", "0.6", 30),
    ] {
        let report = Command::new("perf")
            .args(["report", "--stdio", "--no-children", "--sort", sort])
            .args(["--percent-limit", limit, "-i"])
            .arg(&out)
            .stderr(Stdio::null())
            .output();
        let Ok(report) = report else { continue };
        println!("  {title}:");
        String::from_utf8_lossy(&report.stdout)
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .take(rows)
            .for_each(|l| println!("  {}", shorten(l.trim_end(), 150)));
    }
    println!();
}

/// Runs the plugin client under callgrind and prints the functions with the
/// most instructions of their own (summed over inlined source files), then
/// the plugin's and ureq's functions by inclusive cost.
pub fn callgrind(target: &Target) {
    let out = target.out_file("bench-callgrind.out");
    let (n, warmup) = (40, 2);
    eprintln!("bench: profiling the plugin client under callgrind ({n} completions) ...");
    let ran = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(target.exe)
        .args(target.client_args(n, warmup))
        .stdout(Stdio::null())
        .status();
    match ran {
        Ok(s) if s.success() => {}
        Ok(s) => return println!("callgrind profile: run failed ({s})\n"),
        Err(e) => return println!("callgrind profile: valgrind not available ({e})\n"),
    }
    // n + warm-up + the reference request.
    let chunks = ((n + warmup + 1) * target.chunks) as f64;
    for inclusive in [false, true] {
        let report = Command::new("callgrind_annotate")
            .arg(format!(
                "--inclusive={}",
                if inclusive { "yes" } else { "no" }
            ))
            .args(["--threshold=100", "--auto=no"])
            .arg(&out)
            .output();
        let Ok(report) = report else {
            return println!("callgrind profile: callgrind_annotate not available\n");
        };
        let text = String::from_utf8_lossy(&report.stdout);
        let total = text
            .lines()
            .find(|l| l.contains("PROGRAM TOTALS"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.replace(',', "").parse::<f64>().ok())
            .unwrap_or(0.0);
        let mut by_function = aggregate(&text, inclusive);
        if inclusive {
            by_function
                .retain(|(name, _)| name.contains("moonshot_provider::") || name.contains("ureq"));
        }
        if inclusive {
            println!("  the plugin's and its HTTP client's functions, inclusive:");
        } else {
            println!(
                "Profile of the plugin client, callgrind ({n} completions at concurrency 1, whole process: {:.0} instructions per chunk; {})",
                total / chunks,
                out.display()
            );
            println!("  self cost, summed per function:");
        }
        for (name, ir) in by_function.iter().take(if inclusive { 20 } else { 25 }) {
            println!(
                "  {:>6.2}% {:>7.0} Ir/chunk  {}",
                100.0 * ir / total.max(1.0),
                ir / chunks,
                shorten(name, 130)
            );
        }
    }
    println!();
}

/// Gathers callgrind_annotate's `count (pct)  file:function [object]` lines
/// by function: with line tables, one function's inlined parts are listed
/// under each source file they came from.
fn aggregate(text: &str, inclusive: bool) -> Vec<(String, f64)> {
    let mut sums: HashMap<String, f64> = HashMap::new();
    let table = text
        .lines()
        .skip_while(|l| !l.contains("file:function"))
        .skip(2)
        .take_while(|l| !l.trim().is_empty());
    for line in table {
        let line = line.trim();
        let Some((count, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<f64>() else {
            continue;
        };
        let Some((_, location)) = rest.split_once("%)") else {
            continue;
        };
        let Some((_, function)) = location.trim().split_once(':') else {
            continue;
        };
        let function = match function.rfind(" [") {
            Some(at) if function.ends_with(']') && function[at + 2..].starts_with('/') => {
                &function[..at]
            }
            _ => function,
        };
        // A recursion marker ('2) would split one function in two.
        let function = match function.rsplit_once('\'') {
            Some((name, depth)) if depth.chars().all(|c| c.is_ascii_digit()) => name,
            _ => function,
        };
        let entry = sums.entry(function.to_string()).or_default();
        // Self costs of a function's inlined parts add up; inclusive costs
        // of those parts overlap, so the largest stands for the function.
        *entry = if inclusive {
            entry.max(count)
        } else {
            *entry + count
        };
    }
    let mut sorted: Vec<_> = sums.into_iter().collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    sorted
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() > max {
        format!("{}...", text.chars().take(max).collect::<String>())
    } else {
        text.to_string()
    }
}
