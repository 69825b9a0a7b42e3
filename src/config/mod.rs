//! Settings: read once at start-up from the environment (and a `.env` file, which
//! `main` loads first), validated as a whole, then passed down as typed values.
//!
//! The environment names are the original service's (`SUPABASE_URL`,
//! `GEMINI_API_KEY`, `CIRCUIT_BREAKER_FAIL_MAX`, ...) plus the port's additions;
//! `.env.example` documents every one. Validation collects every problem before
//! failing, so one start-up attempt names all bad settings at once. Secret
//! values are held in [`Secret`], whose `Debug` output is redacted, and never
//! appear in error messages.

mod catalog;
mod gemini;
mod limits;
mod reader;
mod server;
mod supabase;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub use catalog::CatalogSettings;
pub use gemini::GeminiSettings;
pub use limits::{BatchSettings, ResilienceSettings};
use reader::Reader;
pub use server::{CorsOrigins, RateLimitSettings, ServerSettings};
pub use supabase::{AuthSettings, SupabaseSettings};

/// Everything the service needs to run, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Deployment flavour; decides the log format.
    pub app_env: AppEnv,
    /// The HTTP server's own settings.
    pub server: ServerSettings,
    /// Supabase (PostgREST) connection settings.
    pub supabase: SupabaseSettings,
    /// Gemini API settings.
    pub gemini: GeminiSettings,
    /// The catalog's search cache and background re-embed.
    pub catalog: CatalogSettings,
    /// Limits on batch enrichment.
    pub batch: BatchSettings,
    /// Retry and circuit-breaker policy for outbound calls.
    pub resilience: ResilienceSettings,
}

/// `APP_ENV`: `development` gives readable logs, `production` JSON logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    /// Human-readable logs.
    Development,
    /// One JSON object per log line, for log shippers.
    Production,
}

/// A secret setting. `Debug` never shows the value; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Self(value.into())
    }

    /// The secret value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// One or more settings are missing or invalid; each entry names one.
    #[error("invalid configuration (see .env.example):\n{}", format_problems(.0))]
    Invalid(Vec<String>),
    /// The environment could not be read at all.
    #[error("could not read configuration: {0}")]
    Source(#[from] config::ConfigError),
}

fn format_problems(problems: &[String]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Settings {
    /// Loads settings from the process environment.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming every missing or invalid setting.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::load(config::Environment::default())
    }

    /// Loads settings from the given variables only (tests, tools); the
    /// process environment is not read.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming every missing or invalid setting.
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self::load(config::Environment::default().source(Some(vars)))
    }

    fn load(source: config::Environment) -> Result<Self, ConfigError> {
        let config = config::Config::builder()
            .add_source(source.try_parsing(false))
            .build()?;
        let mut r = Reader::new(&config);
        let app_env = r.parse_or("APP_ENV", AppEnv::Development);
        let server = ServerSettings::read(&mut r);
        let supabase = SupabaseSettings::read(&mut r);
        let gemini = GeminiSettings::read(&mut r);
        let catalog = CatalogSettings::read(&mut r);
        let batch = BatchSettings::read(&mut r);
        let resilience = ResilienceSettings::read(&mut r);
        let problems = r.into_problems();
        // A `None` section has recorded a problem.
        match (supabase, gemini) {
            (Some(supabase), Some(gemini)) if problems.is_empty() => Ok(Settings {
                app_env,
                server,
                supabase,
                gemini,
                catalog,
                batch,
                resilience,
            }),
            _ => Err(ConfigError::Invalid(problems)),
        }
    }
}

impl FromStr for AppEnv {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "development" | "dev" | "local" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            _ => Err("expected `development` or `production`".to_owned()),
        }
    }
}
