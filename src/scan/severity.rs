//! An advisory's severity as ECR reports it (`CRITICAL`, `HIGH`, `MEDIUM`, `LOW`,
//! `INFORMATIONAL`, `UNDEFINED`), from its OSV `severity` entries: the CVSS base score of its
//! v3 vector, else its v4, else its v2 (computed by the `cvss` crate), else the word of an
//! `Ubuntu` priority. Part of `scan`.

use cvss::Cvss;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Informational,
    Undefined,
}

impl Severity {
    /// ECR's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
            Severity::Informational => "INFORMATIONAL",
            Severity::Undefined => "UNDEFINED",
        }
    }

    /// The band a CVSS base score falls in (CVSS v3's qualitative scale, which ECR applies
    /// to every version).
    fn of_score(score: f64) -> Severity {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s > 0.0 => Severity::Low,
            _ => Severity::Informational,
        }
    }
}

/// One OSV `severity` entry: its `type` (`CVSS_V3`, …) and `score` (a vector, or a word).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Rating {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

/// How severe an advisory is, and the CVSS vector and base score that say so, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub severity: Severity,
    pub cvss: Option<(String, f64)>,
}

pub fn assess(ratings: &[Rating]) -> Assessment {
    for kind in ["CVSS_V3", "CVSS_V4", "CVSS_V2"] {
        let scored = ratings
            .iter()
            .filter(|rating| rating.kind == kind)
            .find_map(|rating| {
                let vector: Cvss = rating.score.trim().parse().ok()?;
                Some((rating.score.trim().to_string(), vector.score()))
            });
        if let Some((vector, score)) = scored {
            return Assessment {
                severity: Severity::of_score(score),
                cvss: Some((vector, score)),
            };
        }
    }
    let priority = ratings.iter().find(|rating| rating.kind == "Ubuntu");
    let severity = match priority
        .map(|rating| rating.score.to_ascii_lowercase())
        .as_deref()
    {
        Some("critical") => Severity::Critical,
        Some("high") => Severity::High,
        Some("medium") => Severity::Medium,
        Some("low") => Severity::Low,
        Some("negligible") => Severity::Informational,
        _ => Severity::Undefined,
    };
    Assessment {
        severity,
        cvss: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rating(kind: &str, score: &str) -> Rating {
        Rating {
            kind: kind.into(),
            score: score.into(),
        }
    }

    #[test]
    fn v3_scores_decide_first_then_v4_then_v2() {
        let log4shell = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H";
        let v2 = "AV:N/AC:L/Au:N/C:P/I:P/A:P";
        let v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N";
        let all = [
            rating("CVSS_V2", v2),
            rating("CVSS_V4", v4),
            rating("CVSS_V3", log4shell),
        ];
        let assessed = assess(&all);
        assert_eq!(assessed.severity, Severity::Critical);
        assert_eq!(assessed.cvss, Some((log4shell.to_string(), 10.0)));
        let assessed = assess(&all[..2]);
        assert_eq!(assessed.severity, Severity::Medium);
        assert_eq!(assessed.cvss.unwrap().1, 6.9);
        let assessed = assess(&all[..1]);
        assert_eq!(
            (assessed.severity, assessed.cvss.unwrap().1),
            (Severity::High, 7.5)
        );
    }

    #[test]
    fn bands_and_fallbacks() {
        let low = "CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N";
        assert_eq!(assess(&[rating("CVSS_V3", low)]).severity, Severity::Low);
        let none = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N";
        assert_eq!(
            assess(&[rating("CVSS_V3", none)]).severity,
            Severity::Informational
        );
        // An unreadable vector is passed over, not trusted.
        let broken = [
            rating("CVSS_V3", "CVSS:3.1/AV:X"),
            rating("Ubuntu", "medium"),
        ];
        assert_eq!(
            assess(&broken),
            Assessment {
                severity: Severity::Medium,
                cvss: None
            }
        );
        assert_eq!(assess(&[]).severity, Severity::Undefined);
        assert_eq!(
            assess(&[rating("Ubuntu", "untriaged")]).severity,
            Severity::Undefined
        );
    }
}
