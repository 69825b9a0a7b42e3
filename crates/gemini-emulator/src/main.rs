//! `gemini-emulator`: runs the emulator as a server for the local stack.
//!
//! ```text
//! gemini-emulator [--host 127.0.0.1] [--port 54340] [--api-key KEY]
//!                 [--latency-ms N] [--jitter-ms N] [--rpm-limit N] [--faults JSON]
//! ```
//!
//! `--faults` takes the same JSON as `PUT /_emulator/faults`, for example
//! `{"rules": [{"kind": "error", "status": 503, "rate": 0.3}]}`; the other
//! flags then adjust it.

use std::process::ExitCode;

use gemini_emulator::EmulatorConfig;

fn parse_args() -> Result<(String, u16, EmulatorConfig), String> {
    let mut host = "127.0.0.1".to_owned();
    let mut port = 54340;
    let mut config = EmulatorConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => host = value()?,
            "--port" => {
                port = value()?
                    .parse()
                    .map_err(|_| "--port: not a port".to_owned())?;
            }
            "--api-key" => config.api_key = value()?,
            "--faults" => {
                config.faults = serde_json::from_str(&value()?)
                    .map_err(|e| format!("--faults: not valid faults JSON: {e}"))?;
            }
            "--rpm-limit" => {
                config.faults.rpm_limit = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--rpm-limit: not a number".to_owned())?,
                );
            }
            "--latency-ms" => {
                config.faults.latency_ms = value()?
                    .parse()
                    .map_err(|_| "--latency-ms: not a number".to_owned())?;
            }
            "--jitter-ms" => {
                config.faults.jitter_ms = value()?
                    .parse()
                    .map_err(|_| "--jitter-ms: not a number".to_owned())?;
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok((host, port, config))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let (host, port, config) = match parse_args() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("gemini-emulator: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("gemini-emulator: cannot listen on {host}:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%host, port, faults = ?config.faults, "gemini emulator listening");
    match gemini_emulator::serve(listener, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gemini-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
