//! `engine`: runs the platform. With no flags, the embedded default (in-process shopper
//! simulator → dataflow → HTTP on 127.0.0.1:8080).

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    tracing::info!("engine skeleton");
    Ok(())
}
