//! The `catalogai` server binary: load settings, start logging, serve until
//! SIGINT or SIGTERM.

use std::process::ExitCode;

use catalogai::config::Settings;
use catalogai::startup::Application;
use catalogai::{shutdown, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    // A missing `.env` is normal; a malformed one is worth stopping for.
    if let Err(e) = dotenvy::dotenv() {
        if !e.not_found() {
            eprintln!("catalogai: cannot read .env: {e}");
            return ExitCode::FAILURE;
        }
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("catalogai: {e}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(settings.app_env);

    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_stopped(shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}
