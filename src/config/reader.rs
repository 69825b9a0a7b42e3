//! Reads raw values and records a problem for each one that is missing or
//! invalid, so one start-up attempt names every bad setting.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use axum::http::HeaderValue;
use reqwest::Url;

use super::Secret;

/// The settings' source and the problems found so far.
pub(super) struct Reader<'a> {
    config: &'a config::Config,
    problems: Vec<String>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(config: &'a config::Config) -> Self {
        Self {
            config,
            problems: Vec::new(),
        }
    }

    /// Records a problem with a setting.
    pub(super) fn problem(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// Every problem recorded.
    pub(super) fn into_problems(self) -> Vec<String> {
        self.problems
    }
}

impl Reader<'_> {
    /// The trimmed value of a setting; empty counts as unset, as in `.env.example` copies.
    pub(super) fn raw(&self, name: &str) -> Option<String> {
        self.config
            .get_string(&name.to_ascii_lowercase())
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn parse_or<T: FromStr>(&mut self, name: &str, default: T) -> T
    where
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            None => default,
            Some(value) => match value.parse() {
                Ok(parsed) => parsed,
                Err(e) => {
                    self.problems
                        .push(format!("{name}: `{value}` is invalid: {e}"));
                    default
                }
            },
        }
    }

    pub(super) fn bounded<T>(&mut self, name: &str, default: T, min: T, max: T) -> T
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(value) = self.raw(name) else {
            return default;
        };
        match value.parse::<T>() {
            Ok(n) if n >= min && n <= max => n,
            _ => {
                self.problems.push(format!(
                    "{name}: `{value}` is not a whole number between {min} and {max}"
                ));
                default
            }
        }
    }

    pub(super) fn seconds(&mut self, name: &str, default: u64, min: u64, max: u64) -> Duration {
        Duration::from_secs(self.bounded(name, default, min, max))
    }

    pub(super) fn secret(&mut self, name: &str) -> Option<Secret> {
        let value = self.raw(name);
        if value.is_none() {
            self.problems.push(format!("{name}: required, not set"));
        }
        value.map(Secret::new)
    }

    /// A secret that is sent in an HTTP header, so it must be a valid header value.
    pub(super) fn header_secret(&mut self, name: &str) -> Option<Secret> {
        let secret = self.secret(name)?;
        if HeaderValue::from_str(&format!("Bearer {}", secret.expose())).is_err() {
            // The value itself is never echoed: it is a secret.
            self.problems.push(format!(
                "{name}: contains characters that cannot be sent in an HTTP header"
            ));
            return None;
        }
        Some(secret)
    }

    pub(super) fn url(&mut self, name: &str) -> Option<Url> {
        match self.raw(name) {
            None => {
                self.problems.push(format!("{name}: required, not set"));
                None
            }
            Some(value) => self.check_url(name, &value),
        }
    }

    pub(super) fn optional_url(&mut self, name: &str) -> Option<Url> {
        let value = self.raw(name)?;
        self.check_url(name, &value)
    }

    pub(super) fn url_or(&mut self, name: &str, default: &str) -> Option<Url> {
        let value = self.raw(name).unwrap_or_else(|| default.to_owned());
        self.check_url(name, &value)
    }

    pub(super) fn check_url(&mut self, name: &str, value: &str) -> Option<Url> {
        match Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(url)
            }
            _ => {
                self.problems
                    .push(format!("{name}: `{value}` is not an http(s) URL"));
                None
            }
        }
    }
}
