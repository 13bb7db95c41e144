//! Transmission scenarios: what the edge sends to the server.
//!
//! The names and wire codes are defined here once and used everywhere: the CLI, JSON reports,
//! the wire format and the camera page. The paper's scenarios are described in NOTES.md,
//! "Pipeline, as run for the paper".

use std::fmt;
use std::str::FromStr;

use crate::CodecError;

/// One way of getting an image's information from the edge to the server.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// The 224x224 image as PNG; the server runs its own backbone.
    Original,
    /// The 224x224 image as lossy WebP; the server runs its own backbone.
    Webp,
    /// The MobileNetV2 taps as raw float32.
    Features,
    /// A fixed random subset of each layer's channels, raw float32.
    Rs,
    /// Product quantization of the whole image embedding.
    Pq,
    /// Channel subset (ratio 0.5), then product quantization.
    RsPq,
    /// Channel subset (ratio 0.5), each layer quantized to 8 bits and tiled into a lossy WebP.
    RsWebp,
    /// Ours: pooled taps on a per-layer KLT basis, predicted by the training mean image,
    /// scalar-quantized and range-coded under a 1,950-byte cap ([`crate::klt`]).
    KltRc,
}

impl Scenario {
    /// Every scenario, in table order.
    pub const ALL: [Scenario; 8] = [
        Scenario::Original,
        Scenario::Webp,
        Scenario::Features,
        Scenario::Rs,
        Scenario::Pq,
        Scenario::RsPq,
        Scenario::RsWebp,
        Scenario::KltRc,
    ];

    /// The scenario's name on the command line, in JSON and on the page.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Original => "original",
            Scenario::Webp => "webp",
            Scenario::Features => "features",
            Scenario::Rs => "rs",
            Scenario::Pq => "pq",
            Scenario::RsPq => "rs-pq",
            Scenario::RsWebp => "rs-webp",
            Scenario::KltRc => "klt-rc",
        }
    }

    /// The byte that names the scenario in a payload header. Codes are never reused.
    pub fn code(self) -> u8 {
        match self {
            Scenario::Original => 1,
            Scenario::Webp => 2,
            Scenario::Features => 3,
            Scenario::Rs => 4,
            Scenario::Pq => 5,
            Scenario::RsPq => 6,
            Scenario::RsWebp => 7,
            Scenario::KltRc => 8,
        }
    }

    /// The scenario a header byte names, if any.
    pub fn from_code(code: u8) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Whether the payload is an image, so the server runs its own backbone.
    pub fn sends_image(self) -> bool {
        matches!(self, Scenario::Original | Scenario::Webp)
    }

    /// Whether the edge needs an artifact trained on the server (a channel subset or a
    /// codebook) before it can encode.
    pub fn needs_artifact(self) -> bool {
        matches!(
            self,
            Scenario::Rs | Scenario::Pq | Scenario::RsPq | Scenario::RsWebp | Scenario::KltRc
        )
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| CodecError::UnknownScenario(s.to_string()))
    }
}

/// The known names, comma-separated, for error messages.
pub(crate) fn known_names() -> String {
    Scenario::ALL.map(Scenario::name).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip_and_are_unique() {
        for sc in Scenario::ALL {
            assert_eq!(sc.name().parse::<Scenario>().unwrap(), sc);
            assert_eq!(Scenario::from_code(sc.code()), Some(sc));
        }
        let mut codes: Vec<u8> = Scenario::ALL.iter().map(|s| s.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Scenario::ALL.len());
        assert_eq!(Scenario::from_code(0), None);
    }

    #[test]
    fn unknown_name_is_named_in_the_error() {
        let err = "jpeg".parse::<Scenario>().unwrap_err().to_string();
        assert!(err.contains("\"jpeg\"") && err.contains("klt-rc"), "{err}");
    }

    #[test]
    fn serde_uses_the_same_names() {
        let json = serde_json::to_string(&Scenario::RsWebp).unwrap();
        assert_eq!(json, "\"rs-webp\"");
    }
}
