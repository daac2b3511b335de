//! Version ordering against the package manager itself, on versions made up here: dpkg is on
//! every Debian machine, so every run asks `dpkg --compare-versions` about pairs it has not
//! seen. (apk and rpm are checked against their own test suites' cases, in unit tests.)

use std::cmp::Ordering;
use std::process::Command;

use wharf::scan::versions::Scheme;

fn dpkg_says(a: &str, op: &str, b: &str) -> bool {
    let status = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .status()
        .expect("run dpkg");
    status.success()
}

const PIECES: &[&str] = &[
    "0", "00", "1", "9", "10", "010", "a", "z", "Z", ".", "+", "~", "~~", "rc", "b",
];

const NUDGES: &[&str] = &["~", "~rc1", "a", "+1", ".0", "0", "-1", "-0", "~~"];

/// A run of the characters Debian allows, weighted to the ones that order oddly.
fn made_up_part(rng: &mut fastrand::Rng, first_digit: bool) -> String {
    let mut out = if first_digit {
        rng.u8(0..10).to_string()
    } else {
        String::new()
    };
    for _ in 0..rng.usize(0..6) {
        out.push_str(PIECES[rng.usize(..PIECES.len())]);
    }
    out
}

/// `[epoch:]upstream[-revision]`, each part sometimes left out.
fn made_up(rng: &mut fastrand::Rng) -> String {
    let mut version = made_up_part(rng, true);
    if rng.bool() {
        version = format!("{version}-{}1", made_up_part(rng, false));
    }
    if rng.u8(0..5) == 0 {
        version = format!("{}:{version}", rng.u8(0..3));
    }
    version
}

#[test]
fn dpkg_ordering_agrees_with_dpkg_on_versions_it_has_not_seen() {
    if Command::new("dpkg").arg("--version").output().is_err() {
        assert!(std::env::var("CI").is_err(), "dpkg is required under CI");
        eprintln!("skipped: dpkg is not installed");
        return;
    }
    let seed = fastrand::u64(..);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut wrong = Vec::new();
    for _ in 0..300 {
        let a = made_up(&mut rng);
        // Half the pairs differ only at the end, where orderings differ most.
        let b = if rng.bool() {
            made_up(&mut rng)
        } else {
            format!("{a}{}", NUDGES[rng.usize(..NUDGES.len())])
        };
        let expected = if dpkg_says(&a, "lt", &b) {
            Ordering::Less
        } else if dpkg_says(&a, "eq", &b) {
            Ordering::Equal
        } else {
            Ordering::Greater
        };
        if Scheme::Dpkg.compare(&a, &b) != expected {
            wrong.push(format!("{a} {expected:?} {b}"));
        }
    }
    assert!(wrong.is_empty(), "seed {seed:#x}: {wrong:#?}");
}
