//! Timestamps as the entities carry them: ISO 8601 with exactly six
//! fractional digits. Postgres writes `…52.36089+00:00` in JSON built by
//! SQL and some servers `…52.360890+00:00` for the same instant; reading
//! every stored time through here makes an item read the same whichever
//! path it came by.

use serde::{Deserialize, Deserializer};

/// A stored time, normalised (`#[serde(deserialize_with = ...)]`).
pub(crate) fn six_digits<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    Ok(six_digit_fraction(&raw))
}

/// A stored time that may be null, normalised.
pub(crate) fn six_digits_or_null<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|raw| six_digit_fraction(&raw)))
}

fn six_digit_fraction(raw: &str) -> String {
    // Seconds end at the 19th character: `YYYY-MM-DDTHH:MM:SS`.
    let (Some(head), Some(rest)) = (raw.get(..19), raw.get(19..)) else {
        return raw.to_owned();
    };
    let (digits, zone) = match rest.strip_prefix('.') {
        Some(fraction) => {
            let end = fraction
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(fraction.len());
            fraction.split_at(end)
        }
        None => ("", rest),
    };
    if digits.len() > 6 {
        return raw.to_owned();
    }
    format!("{head}.{digits:0<6}{zone}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_get_six_fractional_digits() {
        assert_eq!(
            six_digit_fraction("2026-11-28T20:28:52.36089+00:00"),
            "2026-11-28T20:28:52.360890+00:00"
        );
        assert_eq!(
            six_digit_fraction("2026-11-28T20:28:52+00:00"),
            "2026-11-28T20:28:52.000000+00:00"
        );
        assert_eq!(
            six_digit_fraction("2026-11-28T20:28:52.123456Z"),
            "2026-11-28T20:28:52.123456Z"
        );
        assert_eq!(six_digit_fraction("garbage"), "garbage");
    }
}
