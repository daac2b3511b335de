//! dpkg's version ordering (Debian Policy 5.6.12): `[epoch:]upstream[-revision]`, the epoch
//! compared as a number, then upstream and revision each as alternating runs of non-digits
//! (letters before other characters, `~` before everything, even the end) and numbers. Part
//! of `scan::versions`.

use std::cmp::Ordering;

pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (Version::parse(a), Version::parse(b));
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| compare_part(a.upstream, b.upstream))
        .then_with(|| compare_part(a.revision, b.revision))
}

struct Version<'a> {
    epoch: u64,
    upstream: &'a [u8],
    revision: &'a [u8],
}

impl Version<'_> {
    /// dpkg refuses an epoch that is not a number; it is read here as far as it is one, so
    /// that every input still orders.
    fn parse(version: &str) -> Version<'_> {
        let version = version.trim();
        let (epoch, rest) = match version.split_once(':') {
            Some((epoch, rest)) => (leading_number(epoch.as_bytes()), rest),
            None => (0, version),
        };
        // No revision sorts as revision "0", which is what dpkg compares an empty one as.
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        Version {
            epoch,
            upstream: upstream.as_bytes(),
            revision: revision.as_bytes(),
        }
    }
}

fn leading_number(digits: &[u8]) -> u64 {
    digits
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
}

/// Where a non-digit character sorts: `~` first, then the end of the string (and digits,
/// which end a run), then letters, then everything else.
fn weight(c: Option<&u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_alphabetic() => i32::from(*c),
        Some(c) => i32::from(*c) + 256,
    }
}

fn compare_part(mut a: &[u8], mut b: &[u8]) -> Ordering {
    while !a.is_empty() || !b.is_empty() {
        // The non-digit runs, character by character.
        while a.first().is_some_and(|c| !c.is_ascii_digit())
            || b.first().is_some_and(|c| !c.is_ascii_digit())
        {
            let order = weight(a.first()).cmp(&weight(b.first()));
            if order != Ordering::Equal {
                return order;
            }
            a = a.get(1..).unwrap_or_default();
            b = b.get(1..).unwrap_or_default();
        }
        // The numbers: without leading zeros, the longer is larger, else the first different
        // digit decides.
        let (number_a, rest_a) = split_number(a);
        let (number_b, rest_b) = split_number(b);
        let order = number_a
            .len()
            .cmp(&number_b.len())
            .then_with(|| number_a.cmp(number_b));
        if order != Ordering::Equal {
            return order;
        }
        (a, b) = (rest_a, rest_b);
    }
    Ordering::Equal
}

/// The leading digits of `s` without their leading zeros, and what follows them.
fn split_number(s: &[u8]) -> (&[u8], &[u8]) {
    let end = s
        .iter()
        .position(|c| !c.is_ascii_digit())
        .unwrap_or(s.len());
    let (digits, rest) = s.split_at(end);
    let first = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    (&digits[first..], rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pair in the file is how `dpkg --compare-versions` ordered it.
    #[test]
    fn agrees_with_dpkg_on_every_recorded_pair() {
        let data = include_str!("../../../tests/data/versions/dpkg.txt");
        let mut checked = 0;
        let mut wrong = Vec::new();
        for line in data
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let fields: Vec<&str> = line.split(' ').collect();
            let [a, op, b] = fields[..] else {
                panic!("malformed line {line:?}");
            };
            let expected = match op {
                "<" => Ordering::Less,
                "=" => Ordering::Equal,
                ">" => Ordering::Greater,
                _ => panic!("malformed line {line:?}"),
            };
            if compare(a, b) != expected || compare(b, a) != expected.reverse() {
                wrong.push(line);
            }
            checked += 1;
        }
        assert!(
            wrong.is_empty(),
            "{} of {checked} wrong: {wrong:#?}",
            wrong.len()
        );
        assert!(checked >= 3000, "only {checked} pairs");
    }

    #[test]
    fn a_tilde_sorts_before_everything_even_the_end() {
        assert_eq!(compare("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(compare("1.0~~", "1.0~"), Ordering::Less);
        assert_eq!(compare("1.0~rc1-1", "1.0-1"), Ordering::Less);
    }

    #[test]
    fn letters_sort_before_other_characters_and_after_the_end() {
        assert_eq!(compare("1.0a", "1.0"), Ordering::Greater);
        assert_eq!(compare("1.0a", "1.0+"), Ordering::Less);
        assert_eq!(compare("1.0+", "1.0."), Ordering::Less);
    }

    #[test]
    fn the_epoch_outweighs_everything_and_no_revision_is_revision_zero() {
        assert_eq!(compare("1:0.1", "9.9"), Ordering::Greater);
        assert_eq!(compare("0:1.0", "1.0"), Ordering::Equal);
        assert_eq!(compare("1.0", "1.0-0"), Ordering::Equal);
        assert_eq!(compare("1.0-1", "1.0"), Ordering::Greater);
        assert_eq!(
            compare("2:1-1-1", "2:1-1-2"),
            Ordering::Less,
            "the last hyphen splits"
        );
    }

    #[test]
    fn numbers_compare_as_numbers_whatever_their_length() {
        assert_eq!(compare("1.010", "1.9"), Ordering::Greater);
        assert_eq!(compare("1.001", "1.1"), Ordering::Equal);
        assert_eq!(compare("99999999999999999999999", "1"), Ordering::Greater);
    }
}
