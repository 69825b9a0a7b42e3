# Multi-stage build: compile in the Rust image, run in a slim Debian image as a
# non-root user. TLS uses rustls with bundled roots, so no OpenSSL is needed.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY src ./src
RUN cargo build --release --locked --bin catalogai

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home catalogai
COPY --from=build /src/target/release/catalogai /usr/local/bin/catalogai
USER catalogai
ENV APP_ENV=production HOST=0.0.0.0 PORT=5000
EXPOSE 5000
ENTRYPOINT ["/usr/local/bin/catalogai"]
