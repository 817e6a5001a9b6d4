//! The `datagen` command line: `init`, `reset`, `clear`, `generate`, `simulate` against the
//! shop database. Errors print one clear line and exit non-zero; URLs are never printed whole.

use anyhow::Context;
use clap::{Parser, Subcommand};
use datagen::db::{self, Target};
use datagen::generate::{self, GenerateConfig};
use datagen::simulate::{self, SimConfig};

#[derive(Parser, Debug)]
#[command(
    name = "datagen",
    version,
    about = "Shop schema, fake data and shopper simulator"
)]
struct Cli {
    /// PostgreSQL URL of the shop database, created by `init` when missing [default: the
    /// local `shop` database, postgres://postgres:…@127.0.0.1:5432/shop].
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/shop",
        global = true,
        hide_env_values = true,
        hide_default_value = true
    )]
    database_url: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the database (if missing), tables, indexes and publication. Idempotent.
    Init {
        /// Publication for change capture.
        #[arg(long, default_value = datagen::DEFAULT_PUBLICATION)]
        publication: String,
    },
    /// Drop the tables and publication and create them again.
    Reset {
        #[arg(long, default_value = datagen::DEFAULT_PUBLICATION)]
        publication: String,
    },
    /// Delete all rows and restart ids.
    Clear {
        /// Keep categories, customers and products; delete only activity.
        #[arg(long)]
        activity: bool,
    },
    /// Generate categories, products and customers (bulk COPY, one transaction).
    Generate {
        #[arg(long, default_value_t = 10)]
        categories: usize,
        #[arg(long, default_value_t = 100)]
        products: usize,
        #[arg(long, default_value_t = 50)]
        customers: usize,
        /// Same seed, same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Simulate shopper sessions writing to the database.
    Simulate {
        /// Number of shopper sessions.
        #[arg(long, default_value_t = 50)]
        sessions: usize,
        /// Length of each session, seconds.
        #[arg(long, default_value_t = 25.0)]
        duration: f64,
        /// Sessions at once (one connection each).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
        concurrency: u32,
        /// Cap on actions per second, all sessions together.
        #[arg(long)]
        rate: Option<f64>,
        /// Time compression: think times and session lengths are divided by this.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Back-date activity over the last N days, as fast as possible (no sleeps).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        historical: Option<u32>,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let target = Target::parse(&cli.database_url).context("--database-url")?;
    match cli.command {
        Command::Init { publication } => {
            db::init(&target, &publication).await?;
            println!(
                "initialised {} (publication {publication})",
                target.server()
            );
        }
        Command::Reset { publication } => {
            db::reset(&target, &publication).await?;
            println!("reset {} (publication {publication})", target.server());
        }
        Command::Clear { activity } => {
            db::clear(&target, activity).await?;
            println!(
                "cleared {} in {}",
                if activity {
                    "activity tables"
                } else {
                    "all tables"
                },
                target.server()
            );
        }
        Command::Generate {
            categories,
            products,
            customers,
            seed,
            quiet,
        } => {
            let g = generate::generate(
                &target,
                &GenerateConfig {
                    seed,
                    categories,
                    products,
                    customers,
                    progress: !quiet,
                },
            )
            .await?;
            println!(
                "generated {} new categories, {} products, {} customers in {:.2}s",
                g.categories_created,
                g.products,
                g.customers,
                g.elapsed.as_secs_f64()
            );
        }
        Command::Simulate {
            sessions,
            duration,
            concurrency,
            rate,
            speed,
            historical,
            seed,
            quiet,
        } => {
            let cfg = SimConfig {
                sessions,
                duration_secs: duration,
                concurrency: concurrency as usize,
                rate,
                speed,
                historical_days: historical,
                seed,
                progress: !quiet,
            };
            simulate::validate(&cfg)?;
            let r = simulate::simulate(&target, &cfg).await?;
            println!(
                "simulated {} actions in {:.2}s ({:.0}/s after loading state in {:.2}s)",
                r.total,
                r.elapsed.as_secs_f64(),
                r.per_second(),
                r.load_elapsed.as_secs_f64()
            );
            for (name, n) in &r.actions {
                println!("  {name:<17} {n}");
            }
        }
    }
    Ok(())
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = tokio::runtime::Runtime::new()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(run(cli)));
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
