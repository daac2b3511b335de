//! `ParsedManifest::parse` against a reference model that reads the same JSON value by hand;
//! never a panic on bytes, on deep nesting, on huge numbers or on repeated keys.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

use super::{Change, any_text, apply, cases, default_cases, json_like};
use crate::oci::{Digest, ParsedManifest, media_types};

const MEDIA_TYPES: [&str; 4] = [
    media_types::OCI_MANIFEST,
    media_types::DOCKER_MANIFEST,
    media_types::OCI_INDEX,
    media_types::DOCKER_MANIFEST_LIST,
];

/// A descriptor as the reference model reads it.
struct ReferenceDescriptor {
    media_type: String,
    digest: String,
    size: u64,
    foreign: bool,
}

/// A member that may be missing or null (both mean none), else must be what `read` says.
/// `None` when it is there but wrong.
fn optional<'a, T>(
    object: &'a Map<String, Value>,
    name: &str,
    read: impl Fn(&'a Value) -> Option<T>,
) -> Option<Option<T>> {
    match object.get(name) {
        None | Some(Value::Null) => Some(None),
        Some(value) => read(value).map(Some),
    }
}

fn string(value: &Value) -> Option<&str> {
    value.as_str()
}

fn string_map(value: &Value) -> Option<BTreeMap<String, String>> {
    let object = value.as_object()?;
    object
        .iter()
        .map(|(key, value)| Some((key.clone(), value.as_str()?.to_string())))
        .collect()
}

/// A descriptor: an object whose `mediaType`, `digest` and `size` are there, and whose other
/// members, when there, have their types (`urls`, a list, may not be null).
fn descriptor(value: &Value) -> Option<ReferenceDescriptor> {
    let object = value.as_object()?;
    let urls = match object.get("urls") {
        None => Vec::new(),
        Some(urls) => urls.as_array()?.iter().map(string).collect::<Option<_>>()?,
    };
    optional(object, "artifactType", string)?;
    optional(object, "annotations", string_map)?;
    Some(ReferenceDescriptor {
        media_type: object.get("mediaType")?.as_str()?.to_string(),
        digest: object.get("digest")?.as_str()?.to_string(),
        size: object.get("size")?.as_u64()?,
        foreign: !urls.is_empty(),
    })
}

fn descriptors(value: &Value) -> Option<Vec<ReferenceDescriptor>> {
    value.as_array()?.iter().map(descriptor).collect()
}

/// What a manifest that is this JSON value, sent with this Content-Type, parses to: the
/// image spec's rules as the module documents them, read by hand.
fn reference(value: &Value, content_type: Option<&str>) -> Option<ParsedManifest> {
    let object = value.as_object()?;
    if object.get("schemaVersion")?.as_u64()? != 2 {
        return None;
    }
    let declared = optional(object, "mediaType", string)?;
    let artifact_type = optional(object, "artifactType", string)?;
    let config = optional(object, "config", descriptor)?;
    let layers = optional(object, "layers", descriptors)?;
    let manifests = optional(object, "manifests", descriptors)?;
    let subject = optional(object, "subject", descriptor)?;
    let annotations = optional(object, "annotations", string_map)?;
    let media_type = match (declared, content_type) {
        (Some(declared), Some(header)) if declared != header => return None,
        (Some(declared), _) => declared,
        (None, header) => header?,
    };
    let digest_of = |d: &ReferenceDescriptor| Some((d.digest.parse::<Digest>().ok()?, d.size));
    let mut parsed = ParsedManifest {
        media_type: media_type.to_string(),
        artifact_type: artifact_type.map(str::to_string),
        blobs: Vec::new(),
        manifests: Vec::new(),
        subject: match subject {
            Some(subject) => Some(subject.digest.parse().ok()?),
            None => None,
        },
        annotations,
    };
    if media_type == media_types::OCI_MANIFEST || media_type == media_types::DOCKER_MANIFEST {
        let config = config.filter(|_| manifests.is_none())?;
        parsed.artifact_type = parsed.artifact_type.or(Some(config.media_type.clone()));
        for d in std::iter::once(&config).chain(layers.iter().flatten()) {
            if !d.foreign {
                parsed.blobs.push(digest_of(d)?);
            }
        }
    } else if media_type == media_types::OCI_INDEX
        || media_type == media_types::DOCKER_MANIFEST_LIST
    {
        if config.is_some() || layers.is_some() {
            return None;
        }
        for d in manifests.iter().flatten() {
            parsed.manifests.push(digest_of(d)?);
        }
    } else {
        return None;
    }
    Some(parsed)
}

fn media_type() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(&MEDIA_TYPES[..]).prop_map(str::to_string),
        Just(media_types::OCI_EMPTY.to_string()),
        Just("application/json".to_string()),
        Just(String::new()),
        "[a-z]{1,8}/[a-z.+-]{1,16}",
    ]
}

fn digest() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<Vec<u8>>().prop_map(|bytes| Digest::sha256(&bytes).to_string()),
        1 => any::<Vec<u8>>().prop_map(|bytes| {
            Digest::of(crate::oci::Algorithm::Sha512, &bytes).to_string()
        }),
    ]
}

fn annotations() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-z.]{1,12}", ".{0,12}", 0..3)
}

/// A descriptor, often with optional members; `foreign` ones have `urls`.
fn descriptor_value(foreign: bool) -> impl Strategy<Value = Value> {
    (
        media_type(),
        digest(),
        prop_oneof![0u64..10_000, any::<u64>()],
        prop::option::of(media_type()),
        prop::option::of(annotations()),
        any::<bool>(),
    )
        .prop_map(
            move |(media_type, digest, size, artifact_type, annotations, platform)| {
                let mut d = json!({"mediaType": media_type, "digest": digest, "size": size});
                if foreign {
                    d["urls"] = json!(["https://example.com/layer"]);
                }
                if let Some(artifact_type) = artifact_type {
                    d["artifactType"] = json!(artifact_type);
                }
                if let Some(annotations) = annotations {
                    d["annotations"] = json!(annotations);
                }
                if platform {
                    d["platform"] = json!({"architecture": "amd64", "os": "linux"});
                }
                d
            },
        )
}

/// A valid image manifest or index, as a JSON value, with the Content-Type to send it with.
fn valid_manifest() -> impl Strategy<Value = (Value, Option<String>)> {
    let any_descriptor = || prop_oneof![3 => descriptor_value(false), 1 => descriptor_value(true)];
    (
        prop::sample::select(&MEDIA_TYPES[..]),
        0..3,
        descriptor_value(false),
        prop::collection::vec(any_descriptor(), 0..5),
        prop::option::of(descriptor_value(false)),
        prop::option::of(media_type()),
        prop::option::of(annotations()),
    )
        .prop_map(
            |(media_type, declared, config, children, subject, artifact_type, annotations)| {
                let is_index = [media_types::OCI_INDEX, media_types::DOCKER_MANIFEST_LIST]
                    .contains(&media_type);
                let mut manifest = json!({"schemaVersion": 2});
                if is_index {
                    manifest["manifests"] = json!(children);
                } else {
                    manifest["config"] = config;
                    manifest["layers"] = json!(children);
                }
                if let Some(subject) = subject {
                    manifest["subject"] = subject;
                }
                if let Some(artifact_type) = artifact_type {
                    manifest["artifactType"] = json!(artifact_type);
                }
                if let Some(annotations) = annotations {
                    manifest["annotations"] = json!(annotations);
                }
                // In the body, in the header, or in both.
                if declared != 1 {
                    manifest["mediaType"] = json!(media_type);
                }
                let header = (declared != 0).then(|| media_type.to_string());
                (manifest, header)
            },
        )
}

/// Any JSON value, its strings and keys often those of manifests.
fn any_json() -> impl Strategy<Value = Value> {
    let strings = prop_oneof![
        Just("2".to_string()),
        media_type(),
        digest(),
        "sha256:[0-9a-fA-F]{62,66}",
    ];
    let descriptor_keys = ["digest", "size", "urls", "platform"];
    let keys = prop::sample::select([MANIFEST_ORDER, &descriptor_keys].concat());
    json_like(strings, keys)
}

fn change() -> impl Strategy<Value = Change> {
    super::change(any_json())
}

fn check(value: &Value, content_type: Option<&str>) -> Result<(), TestCaseError> {
    let body = serde_json::to_vec(value).unwrap();
    let parsed = ParsedManifest::parse(&body, content_type);
    prop_assert_eq!(parsed.ok(), reference(value, content_type), "{}", value);
    Ok(())
}

/// `object`'s members in this order, as a JSON array: what serde's derived `Deserialize`
/// takes for a struct as readily as the object.
fn positional(object: &Value, order: &[&str]) -> Value {
    Value::Array(
        order
            .iter()
            .map(|key| object.get(*key).cloned().unwrap_or(Value::Null))
            .collect(),
    )
}

const MANIFEST_ORDER: &[&str] = &[
    "schemaVersion",
    "mediaType",
    "artifactType",
    "config",
    "layers",
    "manifests",
    "subject",
    "annotations",
];
const DESCRIPTOR_ORDER: &[&str] = &["mediaType", "digest", "size"];

/// The parts of a body made of `depth` opening brackets, `shape` saying which.
fn nested(depth: usize, shape: u8) -> String {
    let open = match shape {
        0 => "[",
        1 => r#"{"a":"#,
        _ => r#"[{"platform":"#,
    };
    open.repeat(depth)
}

proptest! {
    #![proptest_config(default_cases())]

    #[test]
    fn any_bytes_never_panic(body in any::<Vec<u8>>(), content_type in prop::option::of(any_text())) {
        let _ = ParsedManifest::parse(&body, content_type.as_deref());
    }

    #[test]
    fn any_json_parses_as_the_reference_says(
        value in any_json(),
        content_type in prop::option::of(media_type()),
    ) {
        check(&value, content_type.as_deref())?;
    }

    #[test]
    fn valid_manifests_yield_exactly_their_descriptors(
        (manifest, content_type) in valid_manifest(),
    ) {
        let body = serde_json::to_vec(&manifest).unwrap();
        let parsed = ParsedManifest::parse(&body, content_type.as_deref());
        let parsed = parsed.map_err(|e| TestCaseError::fail(format!("{e}: {manifest}")))?;
        prop_assert_eq!(Some(parsed), reference(&manifest, content_type.as_deref()));
    }

    #[test]
    fn spoiled_manifests_parse_as_the_reference_says(
        (mut manifest, content_type) in valid_manifest(),
        changes in prop::collection::vec(change(), 1..3),
        other_content_type in prop::option::of(media_type()),
        use_other in prop::bool::weighted(0.2),
    ) {
        for change in &changes {
            apply(&mut manifest, change);
        }
        let content_type = if use_other { other_content_type } else { content_type };
        check(&manifest, content_type.as_deref())?;
    }

    /// Unknown members are ignored, as the image spec requires.
    #[test]
    fn unknown_members_change_nothing(
        (manifest, content_type) in valid_manifest(),
        extra in prop::collection::btree_map("x-[a-z]{1,6}", any_json(), 1..4),
    ) {
        let mut with_extra = manifest.clone();
        with_extra.as_object_mut().unwrap().extend(extra.clone());
        if let Some(config) = with_extra.get_mut("config").and_then(Value::as_object_mut) {
            config.extend(extra);
        }
        let parse = |value: &Value| {
            ParsedManifest::parse(&serde_json::to_vec(value).unwrap(), content_type.as_deref())
        };
        prop_assert_eq!(parse(&with_extra), parse(&manifest));
    }

    /// Numbers JSON can write but `size` cannot hold, and wrong types where only one is right.
    #[test]
    fn required_members_of_the_wrong_type_are_refused(
        (manifest, content_type) in valid_manifest(),
        member in prop::sample::select(vec!["schemaVersion", "size", "digest", "mediaType"]),
        wrong in prop::sample::select(vec![
            "1e400", "-1e400", "18446744073709551616", "-1", "2.0", "1.5", "\"2\"", "null",
            "true", "[]", "{}", "[2]",
        ]),
    ) {
        const HOLE: &str = "\"@hole@\"";
        let mut spoiled = manifest.clone();
        // The top-level mediaType is optional, so only descriptors' members are spoiled; an
        // index with no descriptor has its schemaVersion spoiled instead.
        let descriptor = ["/config", "/manifests/0", "/subject"]
            .into_iter()
            .find(|pointer| manifest.pointer(pointer).is_some());
        let (holder, member) = match (member, descriptor) {
            ("schemaVersion", _) | (_, None) => ("", "schemaVersion"),
            (member, Some(descriptor)) => (descriptor, member),
        };
        spoiled.pointer_mut(holder).unwrap()[member] = json!("@hole@");
        // A string is the right type for a string member: a number is wrong there.
        let wrong = match member {
            "digest" | "mediaType" if wrong.starts_with('"') => "2",
            _ => wrong,
        };
        let body = serde_json::to_string(&spoiled).unwrap().replace(HOLE, wrong);
        let parsed = ParsedManifest::parse(body.as_bytes(), content_type.as_deref());
        prop_assert!(parsed.is_err(), "{} accepted: {:?}", body, parsed);
    }

    /// serde_json refuses duplicate members of a struct; a manifest with two `config`s or two
    /// `digest`s means different things to different readers.
    #[test]
    fn repeated_members_are_refused(
        (manifest, content_type) in valid_manifest(),
        pick in any::<Index>(),
        in_descriptor in any::<bool>(),
    ) {
        let mut text = serde_json::to_string(&manifest).unwrap();
        // A descriptor if there is one, else the manifest itself.
        let descriptor = ["/config", "/subject", "/manifests/0"]
            .into_iter()
            .find_map(|pointer| manifest.pointer(pointer))
            .filter(|_| in_descriptor);
        let in_descriptor = descriptor.is_some();
        let object = descriptor.unwrap_or(&manifest).as_object().unwrap();
        let members: Vec<_> = object.iter().collect();
        let (key, value) = pick.get(&members);
        // Inserted again right after the object's opening brace.
        let member = format!("{}:{},", json!(key), value);
        let brace = match in_descriptor {
            false => 0,
            true => text.find(&serde_json::to_string(object).unwrap()).unwrap(),
        };
        text.insert_str(brace + 1, &member);
        let parsed = ParsedManifest::parse(text.as_bytes(), content_type.as_deref());
        prop_assert!(parsed.is_err(), "{} accepted", text);
    }
}

proptest! {
    #![proptest_config(default_cases())]

    /// A manifest and its descriptors are JSON objects; the same members in an array are
    /// another document, which other readers would not take for a manifest.
    #[test]
    fn arrays_are_not_manifests_or_descriptors(
        (manifest, content_type) in valid_manifest(),
        whole in any::<bool>(),
    ) {
        let mut changed = manifest.clone();
        if whole {
            changed = positional(&manifest, MANIFEST_ORDER);
        } else {
            let pointer = match manifest.get("config") {
                Some(_) => "/config",
                None => "/manifests/0",
            };
            let descriptor = changed.pointer_mut(pointer);
            prop_assume!(descriptor.is_some());
            let descriptor = descriptor.unwrap();
            *descriptor = positional(descriptor, DESCRIPTOR_ORDER);
        }
        let body = serde_json::to_vec(&changed).unwrap();
        let parsed = ParsedManifest::parse(&body, content_type.as_deref());
        prop_assert!(parsed.is_err(), "{} accepted: {:?}", changed, parsed);
    }
}

proptest! {
    // Each case builds and parses up to a few hundred kilobytes.
    #![proptest_config(cases(24))]

    /// serde_json stops at 128 levels: anything deeper is an error, not a stack overflow,
    /// except in unknown members, which it skips without recursing.
    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack(
        depth in prop_oneof![100usize..200, 1_000usize..200_000],
        shape in 0u8..3,
        place in 0u8..4,
        closed in any::<bool>(),
    ) {
        let open = nested(depth, shape);
        let close: String = match closed {
            false => String::new(),
            true => open.chars().rev().filter_map(|c| match c {
                '[' => Some(']'),
                '{' => Some('}'),
                _ => None,
            }).collect(),
        };
        let deep = format!("{open}1{close}");
        let body = match place {
            0 => deep,
            1 => format!(r#"{{"schemaVersion":2,"mediaType":"{}","x-unknown":{deep}}}"#, media_types::OCI_INDEX),
            2 => format!(r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"a","size":1,"digest":"{}","platform":{deep}}}]}}"#, media_types::OCI_INDEX, Digest::sha256(b"")),
            _ => format!(r#"{{"schemaVersion":2,"annotations":{deep}}}"#),
        };
        let parsed = ParsedManifest::parse(body.as_bytes(), Some(media_types::OCI_INDEX));
        // serde_json skips unknown members without recursing, so any depth is fine there;
        // elsewhere 100 to 200 levels may or may not be within its limit.
        if place == 1 {
            prop_assert_eq!(parsed.is_ok(), closed);
        } else if depth >= 1_000 {
            prop_assert!(parsed.is_err());
        }
    }
}

/// What the properties found: serde's derived `Deserialize` took a manifest or a descriptor
/// written as an array of its members in order.
#[test]
fn found_by_the_properties() {
    let empty = Digest::sha256(b"");
    for body in [
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":["a/b","{empty}",0]}}"#,
            media_types::OCI_MANIFEST
        ),
        format!(
            r#"[2,"{}",null,null,null,[],null,null]"#,
            media_types::OCI_INDEX
        ),
    ] {
        assert!(
            ParsedManifest::parse(body.as_bytes(), None).is_err(),
            "{body}"
        );
    }
}
