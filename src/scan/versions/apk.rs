//! apk's version ordering: how Alpine's package manager (apk-tools, `src/version.c`) orders
//! package versions. Part of `scan::versions`.
//!
//! A version reads as a run of tokens, `1.2.3a_rc1_p2~0fa1-r4`: a leading number, more
//! `.`numbers, one letter, `_`suffixes each with an optional number, a `~`commit hash and a
//! `-r`revision. Two versions compare token by token; the first difference decides.

use std::cmp::Ordering;

/// The kinds of token, in the order a version may hold them. The order matters twice: a token
/// may only follow kinds allowed before it, and when two versions agree up to a point where
/// their next tokens are of different kinds, the later kind makes the older version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    FirstNumber,
    Number,
    Letter,
    Suffix,
    SuffixNumber,
    CommitHash,
    Revision,
    End,
    /// Whatever apk cannot read. It ranks after `End`, so `1.0_foo < 1.0`.
    Invalid,
}

/// The suffixes apk knows, oldest first. The first `PRE_RELEASES` come before the release
/// itself (`1.0_rc1 < 1.0`), the rest after it (`1.0 < 1.0_p1`).
const SUFFIXES: [&str; 9] = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"];
const PRE_RELEASES: u64 = 4;

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    /// The digits, letter, suffix name or hash as written.
    text: &'a [u8],
    /// The number's value, the letter's byte, or the suffix's place in `SUFFIXES`.
    value: u64,
}

impl Token<'_> {
    fn bare(kind: Kind) -> Self {
        Token {
            kind,
            text: &[],
            value: 0,
        }
    }

    fn is_pre_release(&self) -> bool {
        self.kind == Kind::Suffix && self.value < PRE_RELEASES
    }
}

struct Tokens<'a> {
    rest: &'a [u8],
    /// The kind of the token read last; `None` before the first.
    last: Option<Kind>,
}

impl<'a> Tokens<'a> {
    fn new(version: &'a str) -> Self {
        Tokens {
            rest: version.as_bytes(),
            last: None,
        }
    }

    fn next_token(&mut self) -> Token<'a> {
        let token = match self.last {
            None => self.number(Kind::FirstNumber),
            Some(last) => self.after(last),
        };
        self.last = Some(token.kind);
        token
    }

    fn after(&mut self, last: Kind) -> Token<'a> {
        let Some(&first) = self.rest.first() else {
            return Token::bare(Kind::End);
        };
        match first {
            b'a'..=b'z' if last <= Kind::Number => {
                let token = Token {
                    kind: Kind::Letter,
                    text: &self.rest[..1],
                    value: u64::from(first),
                };
                self.rest = &self.rest[1..];
                token
            }
            b'.' if last <= Kind::Number => {
                self.rest = &self.rest[1..];
                self.number(Kind::Number)
            }
            b'0'..=b'9' if last == Kind::Suffix => self.number(Kind::SuffixNumber),
            b'_' if last <= Kind::SuffixNumber => {
                self.rest = &self.rest[1..];
                let name = self.take_while(|c| c.is_ascii_lowercase());
                match SUFFIXES.iter().position(|s| s.as_bytes() == name) {
                    Some(place) => Token {
                        kind: Kind::Suffix,
                        text: name,
                        value: place as u64,
                    },
                    None => Token::bare(Kind::Invalid),
                }
            }
            b'~' if last < Kind::CommitHash => {
                self.rest = &self.rest[1..];
                let hash = self.take_while(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
                if hash.is_empty() {
                    return Token::bare(Kind::Invalid);
                }
                Token {
                    kind: Kind::CommitHash,
                    text: hash,
                    value: 0,
                }
            }
            b'-' if last < Kind::Revision && self.rest.starts_with(b"-r") => {
                self.rest = &self.rest[2..];
                self.number(Kind::Revision)
            }
            _ => Token::bare(Kind::Invalid),
        }
    }

    /// A run of digits; none at all makes the version invalid.
    fn number(&mut self, kind: Kind) -> Token<'a> {
        let digits = self.take_while(|c| c.is_ascii_digit());
        if digits.is_empty() {
            return Token::bare(Kind::Invalid);
        }
        // apk holds numbers in 64 bits and lets longer ones wrap around; so do we, to agree.
        let value = digits.iter().fold(0u64, |n, d| {
            n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        });
        Token {
            kind,
            text: digits,
            value,
        }
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a [u8] {
        let len = self.rest.iter().take_while(|&&c| keep(c)).count();
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        taken
    }
}

/// Two tokens of the same kind.
fn compare_tokens(a: &Token, b: &Token) -> Ordering {
    match a.kind {
        // A leading zero after a dot makes apk compare as text (Gentoo's rule): 1.01 < 1.1, and
        // 1.001 < 1.01. The first number never does: 006 = 6.
        Kind::Number if a.text[0] == b'0' || b.text[0] == b'0' => a.text.cmp(b.text),
        Kind::CommitHash => a.text.cmp(b.text),
        _ => a.value.cmp(&b.value),
    }
}

/// How version `a` orders against version `b`, as apk orders them.
///
/// apk also compares versions it would refuse to install: it reads each up to the first thing
/// it cannot parse, and that unreadable rest is a token of kind `Invalid`. We do the same, so
/// every pair orders, and always the same way: `1.0_foo < 1.0`, `1.0bc = 1.0bd`.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (Tokens::new(a), Tokens::new(b));
    loop {
        let (ta, tb) = (a.next_token(), b.next_token());
        if ta.kind != tb.kind {
            // Equal so far, then different kinds of token: a pre-release suffix makes its
            // version older; otherwise the later kind does, so `1.0 < 1.0.1` and `1.0 < 1.0-r0`.
            if ta.is_pre_release() {
                return Ordering::Less;
            }
            if tb.is_pre_release() {
                return Ordering::Greater;
            }
            return tb.kind.cmp(&ta.kind);
        }
        if matches!(ta.kind, Kind::End | Kind::Invalid) {
            return Ordering::Equal;
        }
        let order = compare_tokens(&ta, &tb);
        if order != Ordering::Equal {
            return order;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = include_str!("../../../tests/data/versions/apk.txt");

    fn parse_op(op: &str) -> Ordering {
        match op {
            "<" => Ordering::Less,
            "=" => Ordering::Equal,
            ">" => Ordering::Greater,
            _ => panic!("unknown operator {op:?} in apk.txt"),
        }
    }

    #[test]
    fn orders_as_apk_tools_own_test_cases() {
        let cases: Vec<&str> = VECTORS
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .collect();
        let mut checked = 0;
        let mut wrong = Vec::new();
        for line in &cases {
            let [a, op, b] = line.split_whitespace().collect::<Vec<_>>()[..] else {
                panic!("not `A OP B`: {line:?}");
            };
            let expected = parse_op(op);
            let forward = compare(a, b);
            let backward = compare(b, a);
            if forward != expected || backward != expected.reverse() {
                wrong.push(format!(
                    "{line}: compare(a, b) = {forward:?}, compare(b, a) = {backward:?}"
                ));
            }
            checked += 1;
        }
        assert!(
            wrong.is_empty(),
            "{} wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
        // 738 cases were converted from apk-tools; an emptied or truncated file must not pass.
        assert!(checked >= 738, "only {checked} cases checked");
        assert_eq!(checked, cases.len());
    }

    fn assert_order(a: &str, expected: Ordering, b: &str) {
        assert_eq!(compare(a, b), expected, "{a} vs {b}");
        assert_eq!(compare(b, a), expected.reverse(), "{b} vs {a}");
    }

    #[test]
    fn pre_release_suffixes_come_before_the_release() {
        for suffix in ["_alpha", "_beta", "_pre", "_rc", "_alpha1", "_rc9"] {
            assert_order(&format!("1.0{suffix}"), Ordering::Less, "1.0");
        }
        assert_order("1.0_alpha9", Ordering::Less, "1.0_beta");
        assert_order("1.0_beta9", Ordering::Less, "1.0_pre");
        assert_order("1.0_pre9", Ordering::Less, "1.0_rc");
        // A pre-release of a longer version is still newer than the shorter one.
        assert_order("1.0.1_alpha", Ordering::Greater, "1.0");
    }

    #[test]
    fn post_release_suffixes_come_after_the_release() {
        for suffix in ["_cvs", "_svn", "_git", "_hg", "_p", "_p1", "_git20240101"] {
            assert_order(&format!("1.0{suffix}"), Ordering::Greater, "1.0");
        }
        assert_order("1.0_cvs", Ordering::Less, "1.0_svn");
        assert_order("1.0_svn", Ordering::Less, "1.0_git");
        assert_order("1.0_git", Ordering::Less, "1.0_hg");
        assert_order("1.0_hg", Ordering::Less, "1.0_p");
        // ...but before any further number of the version itself.
        assert_order("1.0_p9", Ordering::Less, "1.0.1");
    }

    #[test]
    fn suffix_numbers_compare_as_numbers_and_a_missing_one_is_older() {
        assert_order("1.0_rc9", Ordering::Less, "1.0_rc10");
        assert_order("1.0_rc", Ordering::Less, "1.0_rc1");
        assert_order("1.0_p", Ordering::Less, "1.0_p0");
        assert_order("1.0_rc1_p1", Ordering::Greater, "1.0_rc1");
        assert_order("1.0_rc1_beta", Ordering::Less, "1.0_rc1");
    }

    #[test]
    fn revisions_order_numerically_and_a_missing_revision_is_oldest() {
        assert_order("1.0-r9", Ordering::Less, "1.0-r10");
        assert_order("1.0", Ordering::Less, "1.0-r0");
        assert_order("1.0-r0", Ordering::Equal, "1.0-r00");
        assert_order("1.0-r100", Ordering::Less, "1.0.1");
        assert_order("1.0-r100", Ordering::Less, "1.0_p1");
    }

    #[test]
    fn a_letter_after_the_numbers_is_newer_than_none_and_older_than_another_number() {
        assert_order("1.2a", Ordering::Greater, "1.2");
        assert_order("1.2a", Ordering::Less, "1.2b");
        assert_order("1.2z", Ordering::Less, "1.2.0");
        assert_order("1.2a", Ordering::Greater, "1.2_p5");
        assert_order("1a", Ordering::Less, "1.0");
    }

    #[test]
    fn more_dotted_numbers_make_a_newer_version() {
        assert_order("1.2", Ordering::Less, "1.2.0");
        assert_order("1.2.0", Ordering::Less, "1.2.0.0");
        assert_order("1.10", Ordering::Greater, "1.9");
        assert_order("1.2.10", Ordering::Greater, "1.2.9.9");
    }

    #[test]
    fn leading_zeros_after_a_dot_compare_as_text_but_not_in_the_first_number() {
        assert_order("1.01", Ordering::Less, "1.1");
        assert_order("1.01", Ordering::Less, "1.010");
        assert_order("1.001", Ordering::Less, "1.01");
        assert_order("1.0", Ordering::Less, "1.00");
        assert_order("1.09", Ordering::Less, "1.1");
        assert_order("1.090", Ordering::Greater, "1.09");
        // Without leading zeros the numbers' values decide.
        assert_order("1.9", Ordering::Less, "1.10");
        // The first number is always a number.
        assert_order("006", Ordering::Equal, "6");
        assert_order("010", Ordering::Greater, "9");
    }

    #[test]
    fn commit_hashes_compare_as_text_before_the_revision() {
        assert_order("1.0~abc", Ordering::Less, "1.0~abd");
        assert_order("1.0~ab", Ordering::Less, "1.0~abc");
        assert_order("1.0~9", Ordering::Less, "1.0~a");
        assert_order("1.0", Ordering::Less, "1.0~0");
        assert_order("1.0~f-r0", Ordering::Less, "1.0~f-r1");
        assert_order("1.0~fff-r9", Ordering::Less, "1.0~ffff-r0");
        assert_order("1.0~abc", Ordering::Greater, "1.0-r5");
    }

    #[test]
    fn invalid_versions_compare_up_to_what_apk_can_read() {
        // The unreadable rest sorts after the end: older than the version without it...
        assert_order("1.0_foo", Ordering::Less, "1.0");
        assert_order("1.0-pre1", Ordering::Less, "1.0");
        assert_order("1.0bc", Ordering::Greater, "1.0");
        assert_order("1.0bc", Ordering::Less, "1.0b");
        // ...but newer than a pre-release there.
        assert_order("1.0_foo", Ordering::Greater, "1.0_rc1");
        // Two unreadable rests after the same start are equal; what comes before them decides.
        assert_order("1.0bc", Ordering::Equal, "1.0bd");
        assert_order("1.0-r1-r2", Ordering::Equal, "1.0-r1_p1");
        assert_order("1.0.x", Ordering::Equal, "1.0.");
        assert_order("", Ordering::Equal, "abc");
        assert_order("", Ordering::Less, "0");
        assert_order("1.0_foo", Ordering::Less, "1.1_foo");
        // Capitals are not letters to apk.
        assert_order("1.0A", Ordering::Less, "1.0");
    }

    #[test]
    fn numbers_too_long_for_64_bits_wrap_as_in_apk() {
        // 2^64 + 1 wraps to 1.
        assert_order("18446744073709551617", Ordering::Equal, "1");
        assert_order("1.0-r18446744073709551616", Ordering::Equal, "1.0-r0");
        assert_order(
            "18446744073709551615",
            Ordering::Greater,
            "18446744073709551614",
        );
    }

    #[test]
    fn sorting_by_compare_is_consistent() {
        // apk's order is a total preorder, so after sorting no later version may be older.
        let mut versions: Vec<&str> = VECTORS
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .flat_map(|line| {
                let parts: Vec<&str> = line.split_whitespace().collect();
                [parts[0], parts[2]]
            })
            .chain([
                "",
                "1.0_foo",
                "1.0bc",
                "1.0-r1-r2",
                "1.0~abc",
                "1.0~abc-r1",
                "1.01",
                "1.001",
                "1.0_rc1_p1",
                "1.0a_p1",
                "18446744073709551617",
            ])
            .collect();
        versions.sort_unstable();
        versions.dedup();
        versions.sort_by(|a, b| compare(a, b));
        let mut wrong = Vec::new();
        for (i, a) in versions.iter().enumerate() {
            for b in &versions[i + 1..] {
                if compare(a, b) == Ordering::Greater {
                    wrong.push(format!("{a} > {b}"));
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "sorted out of order:\n{}",
            wrong.join("\n")
        );
    }
}
