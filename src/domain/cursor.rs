//! [`PageCursor`]: where a page of a newest-first list ends. It travels as
//! 32 base64url characters (the row's id and `created_at` in microseconds),
//! so any string of that shape is a cursor and the document can say so.

use std::borrow::Cow;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

const MICROS_PER_SECOND: i64 = 1_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, in microseconds
/// since 1970: the instants a cursor can name (Postgres holds them all).
const EARLIEST: i64 = -62_135_596_800 * MICROS_PER_SECOND;
const LATEST: i64 = 253_402_300_800 * MICROS_PER_SECOND - 1;

/// The last row of a page: its `created_at` and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    /// Microseconds since 1970-01-01T00:00:00Z, within year 1 to 9999.
    micros: i64,
    /// The row's id, the tie-breaker.
    pub id: Uuid,
}

impl PageCursor {
    /// What a cursor looks like: 24 bytes as unpadded base64url.
    pub const PATTERN: &'static str = "[A-Za-z0-9_-]{32}";

    /// The cursor after the row created at `created_at` (RFC 3339, as
    /// PostgREST writes it) with `id`; `None` if the time cannot be read.
    pub fn after(created_at: &str, id: Uuid) -> Option<Self> {
        Some(Self {
            micros: parse_rfc3339_micros(created_at)?.clamp(EARLIEST, LATEST),
            id,
        })
    }

    /// The time as a PostgREST filter can compare it: `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
    pub fn created_at(&self) -> String {
        let seconds = self.micros.div_euclid(MICROS_PER_SECOND);
        let fraction = self.micros.rem_euclid(MICROS_PER_SECOND);
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let in_day = seconds.rem_euclid(SECONDS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{fraction:06}+00:00",
            in_day / 3600,
            in_day / 60 % 60,
            in_day % 60
        )
    }
}

impl std::fmt::Display for PageCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bytes = [0u8; 24];
        bytes[..16].copy_from_slice(self.id.as_bytes());
        bytes[16..].copy_from_slice(&self.micros.to_be_bytes());
        f.write_str(&URL_SAFE_NO_PAD.encode(bytes))
    }
}

impl serde::Serialize for PageCursor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for PageCursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let invalid = || "is invalid".to_owned();
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?;
        let bytes: [u8; 24] = bytes.try_into().map_err(|_| invalid())?;
        let (id, micros) = bytes.split_at(16);
        let micros: [u8; 8] = micros.try_into().map_err(|_| invalid())?;
        Ok(Self {
            id: Uuid::from_slice(id).map_err(|_| invalid())?,
            micros: i64::from_be_bytes(micros).clamp(EARLIEST, LATEST),
        })
    }
}

impl PartialSchema for PageCursor {
    fn schema() -> RefOr<Schema> {
        // 24 bytes: 32 characters, and the last one carries 6 full bits.
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^{}$", Self::PATTERN)))
            .description(Some(
                "An opaque position in a list: a `next_cursor` as it was given",
            ))
            .into()
    }
}

impl ToSchema for PageCursor {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PageCursor")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`, the forms Postgres writes.
fn parse_rfc3339_micros(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid || !matches!(text.as_bytes().get(10), Some(b'T' | b' ')) {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut micros = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let padded = format!("{:0<6}", fraction.get(..digits.min(6))?);
        micros = padded.parse().ok()?;
        rest = fraction.get(digits..)?;
    }
    let offset_seconds = match rest {
        "Z" | "" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6).map_or(Some(0), |m| m.parse().ok())?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let seconds =
        days_from_civil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second
            - offset_seconds;
    seconds.checked_mul(MICROS_PER_SECOND)?.checked_add(micros)
}

/// Which page of a newest-first list to read: how many rows, after which.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// Rows the page holds at most.
    pub size: usize,
    /// The previous page's `next_cursor`; the first page when `None`.
    pub after: Option<PageCursor>,
}

/// One page of a newest-first list and where the next starts.
#[derive(Debug)]
pub struct Page<T> {
    /// Newest first.
    pub rows: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<PageCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_through_text_and_time() {
        let id = Uuid::new_v4();
        let cursor = PageCursor::after("2026-11-28T20:25:11.529865+00:00", id).unwrap();
        assert_eq!(cursor.created_at(), "2026-11-28T20:25:11.529865+00:00");
        let text = cursor.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<PageCursor>().unwrap(), cursor);
        let shifted = PageCursor::after("2026-11-28T22:25:11.5+02:00", id).unwrap();
        assert_eq!(shifted.created_at(), "2026-11-28T20:25:11.500000+00:00");
        assert_eq!(
            PageCursor::after("1970-01-01T00:00:00Z", id)
                .unwrap()
                .created_at(),
            "1970-01-01T00:00:00.000000+00:00"
        );
        assert_eq!(
            PageCursor::after("2024-02-29T23:59:59.999999+00:00", id)
                .unwrap()
                .created_at(),
            "2024-02-29T23:59:59.999999+00:00"
        );
    }

    #[test]
    fn any_string_of_the_documented_shape_is_a_cursor() {
        for made_up in [
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "________________________________",
        ] {
            let cursor: PageCursor = made_up.parse().unwrap();
            assert!(cursor.created_at().len() >= 32, "{}", cursor.created_at());
        }
        for bad in [
            "",
            "short",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "not base64 at all!!!!!!!!!!!!!!!",
        ] {
            assert!(bad.parse::<PageCursor>().is_err(), "{bad}");
        }
        assert!(PageCursor::after("garbage", Uuid::nil()).is_none());
    }
}
