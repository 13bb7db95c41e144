//! Transmission scenarios: what the edge sends to the server.
//!
//! The names here are the ones used everywhere (CLI, JSON, wire format, page), so they are
//! defined once. The paper's scenarios are described in NOTES.md, "Pipeline, as run for the
//! paper"; the codec issue adds the compressed ones.

use std::fmt;
use std::str::FromStr;

use crate::EdgeError;

/// One way of getting an image's information from the edge to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// The 224x224 image itself; the server runs its own backbone.
    Original,
    /// The MobileNetV2 taps 3/8/14 as raw float32.
    Features,
}

impl Scenario {
    /// Every scenario, in table order.
    pub const ALL: [Scenario; 2] = [Scenario::Original, Scenario::Features];

    /// The scenario's name as used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Original => "original",
            Scenario::Features => "features",
        }
    }

    /// Whether the server must run its own backbone on a decoded image.
    pub fn sends_image(self) -> bool {
        matches!(self, Scenario::Original)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scenario {
    type Err = EdgeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| EdgeError::UnknownScenario(s.to_string()))
    }
}

pub(crate) fn known_names() -> String {
    Scenario::ALL.map(Scenario::name).join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for sc in Scenario::ALL {
            assert_eq!(sc.name().parse::<Scenario>().unwrap(), sc);
        }
    }

    #[test]
    fn unknown_name_is_named_in_the_error() {
        let err = "jpeg".parse::<Scenario>().unwrap_err().to_string();
        assert!(
            err.contains("\"jpeg\"") && err.contains("features"),
            "{err}"
        );
    }
}
