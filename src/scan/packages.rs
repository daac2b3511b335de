//! What an image's package databases say is installed, from their text: dpkg's `status` file
//! (and the one-package files of distroless images' `status.d/`), apk's `installed`, and the
//! distribution and release from `os-release`. Each package carries its source package and
//! the source's version, since advisories name source packages. Part of `scan`; sees file
//! contents only, never a filesystem.

use super::versions::Scheme;

/// One installed binary package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// The source package it was built from (its own name if the database does not say).
    pub source: String,
    /// The source package's version (the binary's, unless the database says otherwise).
    pub source_version: String,
}

impl Package {
    /// The names advisories may know it by. Debian's, Ubuntu's and Alpine's advisories name
    /// source packages; the RPM distributions' name binary packages, or sometimes the source.
    pub fn names(&self, scheme: Scheme) -> Vec<&str> {
        match scheme {
            Scheme::Rpm if self.name != self.source => vec![&self.name, &self.source],
            _ => vec![&self.source],
        }
    }
}

/// The distribution (`ID`, lowercase) and its release (`VERSION_ID`) from `os-release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsRelease {
    pub id: String,
    pub version_id: String,
}

/// `os-release`'s `ID` and `VERSION_ID`, if both are there.
pub fn os_release(text: &str) -> Option<OsRelease> {
    let mut id = None;
    let mut version_id = None;
    for line in text.lines().map(str::trim) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "ID" => id = Some(value.to_ascii_lowercase()),
            "VERSION_ID" => version_id = Some(value),
            _ => {}
        }
    }
    Some(OsRelease {
        id: id?,
        version_id: version_id?,
    })
}

/// A shell-style value: quotes removed, backslash escapes inside double quotes resolved.
fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_string();
    }
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
        return value.to_string();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// The installed packages of a dpkg `status` file, or of a `status.d/` file (which holds one
/// package and may leave out its `Status`). Packages removed with their configuration kept,
/// or half-installed, are not installed.
pub fn dpkg_status(text: &str) -> Vec<Package> {
    paragraphs(text)
        .filter_map(|fields| {
            let field = |name: &str| {
                fields
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(name))
                    .map(|(_, value)| *value)
            };
            let installed = field("Status")
                .is_none_or(|status| status.split_whitespace().nth(2) == Some("installed"));
            if !installed {
                return None;
            }
            let name = field("Package")?.to_string();
            let version = field("Version")?.to_string();
            // `Source: name` or `Source: name (version)`.
            let (source, source_version) = match field("Source") {
                Some(source) => match source.split_once('(') {
                    Some((source, rest)) => (
                        source.trim().to_string(),
                        rest.trim_end_matches(')').trim().to_string(),
                    ),
                    None => (source.trim().to_string(), version.clone()),
                },
                None => (name.clone(), version.clone()),
            };
            Some(Package {
                name,
                version,
                source,
                source_version,
            })
        })
        .collect()
}

/// dpkg's paragraphs: `Key: value` fields, blank lines between packages; continuation lines
/// (which start with a space or tab) belong to multi-line fields no scan needs.
fn paragraphs(text: &str) -> impl Iterator<Item = Vec<(&str, &str)>> {
    text.split("\n\n").filter_map(|paragraph| {
        let fields: Vec<(&str, &str)> = paragraph
            .lines()
            .filter(|line| !line.starts_with([' ', '\t']))
            .filter_map(|line| line.split_once(':'))
            .map(|(key, value)| (key.trim(), value.trim()))
            .collect();
        (!fields.is_empty()).then_some(fields)
    })
}

/// The packages of apk's `installed` database: `P:` name, `V:` version and `o:` origin (the
/// source package; apk has no separate source version), one package per blank-line-separated
/// block.
pub fn apk_installed(text: &str) -> Vec<Package> {
    text.split("\n\n")
        .filter_map(|block| {
            let field = |key: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(key).map(str::trim))
            };
            let name = field("P:")?.to_string();
            let version = field("V:")?.to_string();
            Some(Package {
                source: field("o:").unwrap_or(&name).to_string(),
                source_version: version.clone(),
                name,
                version,
            })
        })
        .collect()
}

/// A package, briefly, for tests.
#[cfg(test)]
pub fn package(name: &str, version: &str, source: &str, source_version: &str) -> Package {
    Package {
        name: name.into(),
        version: version.into(),
        source: source.into(),
        source_version: source_version.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_gives_the_distribution_and_release() {
        let debian =
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\nID=debian\n";
        let expected = OsRelease {
            id: "debian".into(),
            version_id: "12".into(),
        };
        assert_eq!(os_release(debian), Some(expected));
        let alpine = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n";
        assert_eq!(os_release(alpine).unwrap().version_id, "3.19.1");
        let quoted = "ID='ubuntu'\nVERSION_ID=\"22.04\\\"\"\n# ID=other\n";
        assert_eq!(os_release(quoted).unwrap().version_id, "22.04\"");
        assert_eq!(os_release("ID=debian\n"), None, "no release: not known");
    }

    #[test]
    fn dpkg_status_lists_installed_packages_with_their_sources() {
        let status = "\
Package: libssl3
Status: install ok installed
Source: openssl
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit
 a continuation line: Version: 9.9

Package: removed
Status: deinstall ok config-files
Version: 1.0-1

Package: libpcre2-8-0
Status: hold ok installed
Source: pcre2 (10.42-1)
Version: 10.42-1+b1

Package: half
Status: install reinstreq half-installed
Version: 2.0

Package: adduser
Status: install ok installed
Version: 3.134
";
        assert_eq!(
            dpkg_status(status),
            [
                package("libssl3", "3.0.11-1~deb12u2", "openssl", "3.0.11-1~deb12u2"),
                package("libpcre2-8-0", "10.42-1+b1", "pcre2", "10.42-1"),
                package("adduser", "3.134", "adduser", "3.134"),
            ]
        );
        // A distroless status.d file: one package, no Status.
        let single = "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n";
        assert_eq!(
            dpkg_status(single),
            [package(
                "tzdata",
                "2024a-0+deb12u1",
                "tzdata",
                "2024a-0+deb12u1"
            )]
        );
    }

    #[test]
    fn apk_installed_lists_packages_with_their_origin() {
        let installed = "\
C:Q1abc=
P:libcrypto3
V:3.1.4-r5
A:x86_64
o:openssl

P:musl
V:1.2.4_git20230717-r4
";
        assert_eq!(
            apk_installed(installed),
            [
                package("libcrypto3", "3.1.4-r5", "openssl", "3.1.4-r5"),
                package(
                    "musl",
                    "1.2.4_git20230717-r4",
                    "musl",
                    "1.2.4_git20230717-r4"
                ),
            ]
        );
    }
}
