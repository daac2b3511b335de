//! The fuzzer's input classes: each a generator that builds one kind of request (or a short
//! sequence, or a race) from the case's seeded generator, sends it and checks what it can
//! tell about the answer beyond the oracles every request has. One file per area: `names`
//! (repository names and references), `uploads`, `races`, `reads` (blobs, listings,
//! referrers), `manifests` (malformed) and `manifest_links` (what they point at), `auth`,
//! `ecr`; the bare-socket classes are in `stress::raw` and `stress::raw_bodies`.
//! Classes are picked by weight.

mod auth;
mod ecr;
mod manifest_links;
mod manifests;
mod names;
mod races;
mod reads;
pub mod uploads;

use std::ops::RangeBounds;

use futures::future::BoxFuture;

pub use super::fuzz::Case;

/// One input class: its name in reports, its weight in the draw, its generator.
pub struct Class {
    pub name: &'static str,
    pub weight: u32,
    pub run: for<'a, 'b> fn(&'a mut Case<'b>) -> BoxFuture<'a, ()>,
}

/// `class!("name", weight, function)`: a [`Class`] running `function(cx)`.
macro_rules! class {
    ($name:literal, $weight:expr, $run:path) => {
        $crate::stress::classes::Class {
            name: $name,
            weight: $weight,
            run: |cx| Box::pin($run(cx)),
        }
    };
}
pub(crate) use class;

pub fn all() -> Vec<Class> {
    let mut all = Vec::new();
    all.extend(names::classes());
    all.extend(uploads::classes());
    all.extend(races::classes());
    all.extend(reads::classes());
    all.extend(manifests::classes());
    all.extend(manifest_links::classes());
    all.extend(auth::classes());
    all.extend(ecr::classes());
    all.extend(super::raw::classes());
    all.extend(super::raw_bodies::classes());
    let mut names: Vec<&str> = all.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len(), "class names are unique");
    all
}

/// A class drawn by weight.
pub fn pick<'a>(classes: &'a [Class], rng: &mut fastrand::Rng) -> &'a Class {
    let total: u32 = classes.iter().map(|c| c.weight).sum();
    let mut draw = rng.u32(..total);
    for class in classes {
        if draw < class.weight {
            return class;
        }
        draw -= class.weight;
    }
    unreachable!("the draw is below the total weight")
}

/// One of `items`.
pub fn one_of<'a, T: ?Sized>(rng: &mut fastrand::Rng, items: &[&'a T]) -> &'a T {
    items[rng.usize(..items.len())]
}

/// `len` (a number or a range) hex digits.
pub fn hex(rng: &mut fastrand::Rng, len: impl RangeBounds<usize>) -> String {
    (0..rng.usize(len))
        .map(|_| char::from_digit(rng.u32(..16), 16).unwrap())
        .collect()
}

/// A well-formed sha256 digest of nothing stored.
pub fn unknown_digest(rng: &mut fastrand::Rng) -> String {
    format!("sha256:{}", hex(rng, 64..=64))
}

pub fn bytes(rng: &mut fastrand::Rng, len: impl RangeBounds<usize>) -> Vec<u8> {
    let len = rng.usize(len);
    std::iter::repeat_with(|| rng.u8(..)).take(len).collect()
}

/// Printable ASCII, any of it.
pub fn ascii(rng: &mut fastrand::Rng, len: impl RangeBounds<usize>) -> String {
    (0..rng.usize(len))
        .map(|_| char::from(rng.u8(0x21..0x7f)))
        .collect()
}

/// A valid repository name component.
pub fn component(rng: &mut fastrand::Rng) -> String {
    let len = rng.usize(1..12);
    (0..len).map(|_| rng.lowercase()).collect()
}

/// A string that is unique to this case, for tags and content.
pub fn unique(cx: &Case<'_>) -> String {
    format!("{:016x}", cx.seed)
}

/// A reference that is certainly invalid: too long, bad characters, bad digests.
pub fn bad_reference(rng: &mut fastrand::Rng) -> String {
    let h64 = hex(rng, 64..=64);
    match rng.u8(..12) {
        0 => "a".repeat(129),
        1 => format!("-{}", component(rng)),
        2 => format!(".{}", component(rng)),
        3 => format!(
            "tag{}",
            one_of(rng, &["!", "$", "%20", "~", "+", "%00", "*"])
        ),
        4 => format!("md5:{}", hex(rng, 32..=32)),
        5 => format!("sha256:{}", hex(rng, 1..64)),
        6 => format!("sha256:{}", h64.to_uppercase()),
        7 => "sha256:".into(),
        8 => format!("sha256:{}z", &h64[1..]),
        9 => format!("sha256:{h64}{h64}"),
        10 => format!(":{h64}"),
        _ => format!("SHA256:{h64}"),
    }
}
