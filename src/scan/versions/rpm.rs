//! rpm's version ordering: `[epoch:]version[-release]` compared as rpm compares them (its
//! `rpmverCmp`, with `rpmvercmp` for each part), so that RHEL, Fedora and Amazon Linux
//! packages order against advisories exactly as rpm would order them. Part of
//! `scan::versions`.
//!
//! The epoch is a number, absent meaning 0. Version and release are each read as runs of
//! digits (numbers, leading zeros ignored) and runs of ASCII letters, everything else only
//! separating them. A number beats letters, `~` sorts before anything (even the end) and `^`
//! after the end but before any further run.

use std::cmp::Ordering;

/// How rpm orders the EVR `a` against `b`. Never fails: an empty string, which rpm refuses,
/// orders as an empty version.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (Evr::parse(a), Evr::parse(b));
    compare_numbers(a.epoch, b.epoch)
        .then_with(|| vercmp(a.version, b.version))
        .then_with(|| match (a.release, b.release) {
            (Some(a), Some(b)) => vercmp(a, b),
            // rpm puts a version without a release before any with one (even an empty one).
            (a, b) => a.is_some().cmp(&b.is_some()),
        })
}

struct Evr<'a> {
    epoch: &'a [u8],
    version: &'a [u8],
    release: Option<&'a [u8]>,
}

impl Evr<'_> {
    fn parse(evr: &str) -> Evr<'_> {
        let evr = evr.as_bytes();
        // rpm's strings are C strings: it never sees past a NUL.
        let evr = evr.split(|&c| c == 0).next().unwrap_or_default();
        // An epoch is only digits followed by ':'. Anything else before a ':' (`a:1.0`) is,
        // as in rpm, part of the version, where the ':' merely separates.
        let digits = evr.iter().take_while(|c| c.is_ascii_digit()).count();
        let (epoch, rest) = match evr.split_at(digits) {
            (epoch, [b':', rest @ ..]) => (epoch, rest),
            _ => (&[][..], evr),
        };
        // The release is what follows the last hyphen; the version may hold others.
        let (version, release) = match rest.iter().rposition(|&c| c == b'-') {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        Evr {
            epoch,
            version,
            release,
        }
    }
}

/// Digit runs as numbers of any length: without leading zeros, the longer is larger, else
/// the first different digit decides. An empty run is 0.
fn compare_numbers(a: &[u8], b: &[u8]) -> Ordering {
    let (a, b) = (strip_zeros(a), strip_zeros(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn strip_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

/// rpm's `rpmvercmp` on one part (version or release). Bytes outside ASCII count as
/// separators, as in rpm.
fn vercmp(mut a: &[u8], mut b: &[u8]) -> Ordering {
    use Ordering::{Equal, Greater, Less};
    loop {
        a = skip_separators(a);
        b = skip_separators(b);
        match (a.first(), b.first()) {
            (Some(b'~'), Some(b'~')) | (Some(b'^'), Some(b'^')) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            // `~` is checked first: it sorts below everything, `^` included.
            (Some(b'~'), _) => return Less,
            (_, Some(b'~')) => return Greater,
            // `^` sorts above the end but below any run.
            (Some(b'^'), None) | (Some(_), Some(b'^')) => return Greater,
            (None, Some(b'^')) | (Some(b'^'), Some(_)) => return Less,
            // The side with runs left over is the larger.
            (x, y) if x.is_none() || y.is_none() => return x.is_some().cmp(&y.is_some()),
            _ => {}
        }

        // Both now start a run of letters or digits; `a`'s first character sets its kind.
        let numeric = a[0].is_ascii_digit();
        let (run_a, rest_a) = split_run(a, numeric);
        let (run_b, rest_b) = split_run(b, numeric);
        if run_b.is_empty() {
            // The runs are of different kinds: a number beats letters.
            return if numeric { Greater } else { Less };
        }
        let order = if numeric {
            compare_numbers(run_a, run_b)
        } else {
            run_a.cmp(run_b)
        };
        if order != Equal {
            return order;
        }
        a = rest_a;
        b = rest_b;
    }
}

fn skip_separators(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .take_while(|&&c| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^')
        .count();
    &s[n..]
}

/// The leading run of digits (or of letters) and what follows it.
fn split_run(s: &[u8], numeric: bool) -> (&[u8], &[u8]) {
    let n = s
        .iter()
        .take_while(|c| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        })
        .count();
    s.split_at(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    /// Every pair in the file is how rpm orders it: the cases of rpm's own test suite, then
    /// epoch and release cases from its EVR comparison.
    #[test]
    fn agrees_with_rpm_on_every_recorded_pair() {
        let data = include_str!("../../../tests/data/versions/rpm.txt");
        let lines: Vec<&str> = data
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect();
        let mut checked = 0;
        let mut wrong = Vec::new();
        for line in &lines {
            let fields: Vec<&str> = line.split(' ').collect();
            let [a, op, b] = fields[..] else {
                panic!("malformed line {line:?}");
            };
            let expected = match op {
                "<" => Less,
                "=" => Equal,
                ">" => Greater,
                _ => panic!("malformed line {line:?}"),
            };
            let (forward, backward) = (compare(a, b), compare(b, a));
            if forward != expected || backward != expected.reverse() {
                wrong.push(format!("{line}  (got {forward:?}, reversed {backward:?})"));
            }
            checked += 1;
        }
        assert!(
            wrong.is_empty(),
            "{} of {checked} wrong: {wrong:#?}",
            wrong.len()
        );
        // The file holds 149 pairs, 91 of them from rpm's rpmvercmp.at.
        assert!(
            checked >= lines.len() && checked >= 149,
            "only {checked} pairs"
        );
    }

    #[test]
    fn a_tilde_sorts_before_everything_even_the_end() {
        assert_eq!(compare("1.0~rc1", "1.0"), Less);
        assert_eq!(compare("1.0~", "1.0"), Less);
        assert_eq!(compare("1.0~~", "1.0~"), Less);
        assert_eq!(compare("1.0~rc1", "1.0^"), Less);
        assert_eq!(compare("1.0~rc1-5", "1.0-1"), Less);
    }

    #[test]
    fn a_caret_sorts_after_the_end_but_before_any_further_run() {
        assert_eq!(compare("1.0^", "1.0"), Greater);
        assert_eq!(compare("1.0^git1", "1.0"), Greater);
        assert_eq!(compare("1.0^git1", "1.0.0"), Less);
        assert_eq!(compare("1.0^git1", "1.0a"), Less);
        assert_eq!(compare("1.0^^", "1.0^"), Greater);
    }

    #[test]
    fn numbers_beat_letters_and_ignore_leading_zeros() {
        assert_eq!(compare("1.0", "1.a"), Greater);
        assert_eq!(compare("1a", "1.0"), Less);
        assert_eq!(compare("1.001", "1.1"), Equal);
        assert_eq!(compare("1.123456789012345678901234567890", "1.99"), Greater);
    }

    #[test]
    fn the_epoch_outweighs_version_and_release_and_is_a_number() {
        assert_eq!(compare("1:0.1", "9.9-9"), Greater);
        assert_eq!(compare("0:1.0", "1.0"), Equal);
        assert_eq!(compare(":1.0", "0:1.0"), Equal);
        assert_eq!(compare("010:1", "10:1"), Equal);
        assert_eq!(compare("10:1", "9:1"), Greater);
        assert_eq!(compare("123456789012345678901234567890:1", "9:1"), Greater);
    }

    #[test]
    fn a_missing_release_sorts_before_any_release() {
        assert_eq!(compare("1.0", "1.0-0"), Less);
        assert_eq!(compare("1.0", "1.0-"), Less);
        assert_eq!(compare("1.0-", "1.0-0"), Less);
    }

    #[test]
    fn the_last_hyphen_splits_version_from_release() {
        assert_eq!(compare("1.0-2-1", "1.0-10"), Greater);
        assert_eq!(compare("2:1-1-1", "2:1-1-2"), Less);
    }

    #[test]
    fn a_non_numeric_epoch_stays_in_the_version() {
        // `a:1.0` is the version `a`, `1`, `0`: letters lose to the number 1.
        assert_eq!(compare("a:1.0", "1.0"), Less);
        assert_eq!(compare("a:1.0", "a.1.0"), Equal);
    }

    #[test]
    fn every_input_orders_both_ways_without_panicking() {
        let odd = [
            "",
            ":",
            "-",
            "~",
            "^",
            "1:",
            "1:-",
            "-1",
            ":-:",
            "a:b:c",
            "1.0\0junk",
            "1.0",
            "é",
            "1.é",
            "~^~",
            "^~",
            "--",
            "0:",
            "00:0-0",
        ];
        for a in odd {
            for b in odd {
                assert_eq!(compare(a, b), compare(b, a).reverse(), "{a:?} vs {b:?}");
            }
        }
        assert_eq!(compare("1.0\0junk", "1.0"), Equal, "rpm stops at a NUL");
    }
}
