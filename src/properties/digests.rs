//! Digests: `sha256:` with 64 or `sha512:` with 128 lower-case hex characters, and nothing
//! else; the hashers that make them.

use proptest::prelude::*;
use sha2::{Digest as _, Sha256, Sha512};

use super::any_text;
use crate::oci::{Algorithm, Digest, DigestError, Sha256Hasher, StreamHasher};

/// The reference model: the algorithm and hex a digest text names, if it is a valid one.
fn reference(text: &str) -> Option<(Algorithm, &str)> {
    let (algorithm, hex) = text.split_once(':')?;
    let (algorithm, length) = match algorithm {
        "sha256" => (Algorithm::Sha256, 64),
        "sha512" => (Algorithm::Sha512, 128),
        _ => return None,
    };
    let lower_hex = hex
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    (hex.len() == length && lower_hex).then_some((algorithm, hex))
}

/// Texts near digests: every algorithm spelling and hex of lengths around the right ones.
fn near_digests() -> impl Strategy<Value = String> {
    let algorithm = prop_oneof![
        Just("sha256:"),
        Just("sha512:"),
        Just("SHA256:"),
        Just("sha384:"),
        Just("md5:"),
        Just("sha256"),
        Just("sha256::"),
        Just(":"),
        Just(""),
        Just("sha256+b64u:"),
    ];
    let hex = prop_oneof![
        "[0-9a-f]{64}",
        "[0-9a-f]{128}",
        "[0-9a-f]{60,70}",
        "[0-9a-f]{120,130}",
        "[0-9a-fA-F]{64}",
        "[0-9a-fg:=_ -]{0,130}",
    ];
    (algorithm, hex).prop_map(|(algorithm, hex)| format!("{algorithm}{hex}"))
}

fn check_against_reference(text: &str) -> Result<(), TestCaseError> {
    let parsed = text.parse::<Digest>();
    match (&parsed, reference(text)) {
        (Ok(digest), Some((algorithm, hex))) => {
            prop_assert_eq!(digest.algorithm(), algorithm);
            prop_assert_eq!(digest.hex(), hex);
            prop_assert_eq!(digest.to_string(), text);
        }
        (Err(error), None) => {
            // A hex complaint names an algorithm that was really given.
            if let DigestError::BadHex(algorithm, _) = error {
                let prefix = format!("{algorithm}:");
                prop_assert!(text.starts_with(&prefix));
            }
        }
        _ => prop_assert!(false, "{:?} parsed as {:?}", text, parsed),
    }
    Ok(())
}

proptest! {
    #![proptest_config(super::default_cases())]

    #[test]
    fn any_text_parses_as_the_reference_says(text in any_text()) {
        check_against_reference(&text)?;
    }

    #[test]
    fn texts_near_digests_parse_as_the_reference_says(text in near_digests()) {
        check_against_reference(&text)?;
    }

    #[test]
    fn digests_of_bytes_are_the_hashes_and_parse_back(bytes in any::<Vec<u8>>()) {
        let sha256 = Digest::sha256(&bytes);
        prop_assert_eq!(sha256.hex(), hex::encode(Sha256::digest(&bytes)));
        prop_assert_eq!(sha256.to_string().parse::<Digest>(), Ok(sha256.clone()));
        let sha512 = Digest::of(Algorithm::Sha512, &bytes);
        prop_assert_eq!(sha512.hex(), hex::encode(Sha512::digest(&bytes)));
        prop_assert_eq!(sha512.to_string().parse::<Digest>(), Ok(sha512));
    }

    /// Uploads hash chunk by chunk, and across nodes through a saved midstate.
    #[test]
    fn hashing_in_pieces_is_hashing_at_once(
        bytes in any::<Vec<u8>>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort();
        let pieces = cuts
            .iter()
            .scan(0, |start, &end| Some(&bytes[std::mem::replace(start, end)..end]));
        let mut stream = StreamHasher::new(Algorithm::Sha256);
        let mut resumable = Sha256Hasher::default();
        for piece in pieces {
            stream.update(piece);
            resumable.update(piece);
            resumable = Sha256Hasher::restore(&resumable.save()).unwrap();
        }
        prop_assert_eq!(stream.finish(), Digest::sha256(&bytes));
        prop_assert_eq!(resumable.finish(), Digest::sha256(&bytes));
    }

    /// Midstates come back from the database, which may hold anything: any bytes, a real
    /// midstate with one byte changed (its block count, its buffered bytes or their length),
    /// or one with any block count.
    #[test]
    fn restoring_any_bytes_never_panics(
        state in prop_oneof![
            any::<Vec<u8>>(),
            (any::<Vec<u8>>(), any::<prop::sample::Index>(), 1..=255u8).prop_map(|(bytes, at, flip)| {
                let mut hasher = Sha256Hasher::default();
                hasher.update(&bytes);
                let mut state = hasher.save();
                let i = at.index(state.len());
                state[i] ^= flip;
                state
            }),
            // Any block count (bytes 32..40 of sha2's layout).
            any::<u64>().prop_map(|blocks| {
                let mut state = Sha256Hasher::default().save();
                state[32..40].copy_from_slice(&blocks.to_le_bytes());
                state
            }),
        ],
        more in any::<Vec<u8>>(),
    ) {
        if let Some(mut hasher) = Sha256Hasher::restore(&state) {
            hasher.update(&more);
            hasher.finish();
        }
    }
}

/// What the properties found: a midstate whose block count is so large that SHA-256 could
/// never have hashed that much made sha2 overflow when finishing (a panic in debug builds).
#[test]
fn found_by_the_properties() {
    let mut state = Sha256Hasher::default().save();
    state[39] = 0x80;
    assert!(Sha256Hasher::restore(&state).is_none());
    // The largest count that can still be finished is taken.
    state[32..40].copy_from_slice(&(u64::MAX / 512).to_le_bytes());
    Sha256Hasher::restore(&state).unwrap().finish();
}
