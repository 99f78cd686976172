//! Command line: parse, load config, start telemetry, call into the library.

use std::{io::BufRead, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Parser, Subcommand};
use download_sessions::{
    config::Settings,
    domain::{Privilege, UserName, MAX_USER_NAME},
    service::import::import_files,
    storage::Buckets,
    store::Db,
    telemetry, Application,
};

#[derive(Parser)]
#[command(
    name = "download-sessions",
    version,
    about = "vSphere Content Library download sessions, persistent and multi-instance"
)]
struct Cli {
    /// Configuration file (TOML); env DLS__SECTION__KEY overrides it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, data plane, workers and maintenance.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Import files as the next content version of a library item; prints the item id last.
    Import {
        /// Library name, matched without case (created when missing).
        #[arg(long)]
        library: String,
        /// Item name, matched without case (created when missing).
        #[arg(long)]
        item: String,
        /// Item type (e.g. ovf, iso, file). Default for a new item: ovf when an .ovf is
        /// among the files, iso when all are .iso, else file; an existing item keeps its type.
        #[arg(long = "type", value_name = "TYPE")]
        item_type: Option<String>,
        /// Files to import.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the OpenAPI document (the committed openapi/openapi.json); needs no database.
    Openapi,
    /// Download a library item's files from a server (this one or vCenter) into DIR:
    /// parallel, resumable, every file checked against the server's checksum.
    #[command(after_help = download_sessions::client::export::EXIT_CODES)]
    Export(download_sessions::client::ExportArgs),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user (or replace its password and privileges).
    Add {
        name: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Privilege to grant (repeatable), as vCenter names it: System.Read,
        /// ContentLibrary.DownloadSession, ContentLibrary.ReadStorage,
        /// ContentLibrary.CreateLocalLibrary, ContentLibrary.UpdateLocalLibrary,
        /// ContentLibrary.DeleteLocalLibrary, ContentLibrary.UpdateLibrary,
        /// ContentLibrary.AddLibraryItem, ContentLibrary.UpdateLibraryItem,
        /// ContentLibrary.DeleteLibraryItem.
        #[arg(long = "privilege", value_name = "P")]
        privileges: Vec<String>,
    },
    /// Remove a user: its login tokens stop working, its download sessions are
    /// deleted (their URIs stop working) on every instance at once.
    Remove { name: String },
}

/// glibc serves allocations below the mmap threshold from per-thread arenas
/// and keeps what they freed: a burst of 19 MiB argon2 work areas or 1 MiB
/// download buffers on many threads stayed resident for good. Above 128 KiB,
/// blocks are mapped and returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn bound_allocator_arenas() {
    // SAFETY: mallopt only sets an allocator parameter; called once, before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_allocator_arenas() {}

fn main() -> ExitCode {
    bound_allocator_arenas();
    let cli = Cli::parse();
    // Pure output: no configuration, database or runtime involved.
    if let Command::Openapi = cli.command {
        print!("{}", download_sessions::openapi::pretty_json());
        return ExitCode::SUCCESS;
    }
    // A client of some server: none of this process's server configuration applies.
    if let Command::Export(args) = cli.command {
        return download_sessions::client::export::main(args);
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, settings));
    // Lines still queued for the log writer thread.
    telemetry::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    // With no database configured, a private cluster under the data dir serves this process.
    let _embedded = match &settings.database.url {
        Some(_) => None,
        None => {
            let pg =
                download_sessions::embedded_pg::EmbeddedPostgres::start(&settings.data_dir).await?;
            eprintln!(
                "no database configured: using the embedded PostgreSQL cluster in {}",
                pg.data_dir().display()
            );
            settings.database.url = Some(pg.url());
            Some(pg)
        }
    };
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let db = connect(&settings).await?;
            db.migrate().await.context("migrations failed")?;
            eprintln!("migrations applied");
        }
        Command::User {
            command:
                UserCommand::Add {
                    name,
                    password_stdin: _,
                    privileges,
                },
        } => {
            anyhow::ensure!(!name.trim().is_empty(), "the user name is empty");
            let name = UserName::new(&name).with_context(|| {
                format!("a user name has at most {MAX_USER_NAME} bytes and no NUL")
            })?;
            for p in &privileges {
                p.parse::<Privilege>().map_err(anyhow::Error::msg)?;
            }
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(!password.is_empty(), "no password on standard input");
            let db = connect(&settings).await?;
            db.migrate().await.context("migrations failed")?;
            let hash = tokio::task::spawn_blocking({
                let password = password.to_string();
                move || download_sessions::service::hash_password(&password)
            })
            .await??;
            let created = db
                .upsert_user(&name, &hash, &privileges)
                .await
                .with_context(|| format!("cannot save user {name}"))?;
            if created {
                eprintln!("user {name} added");
            } else {
                eprintln!("user {name} updated; its login tokens were revoked");
            }
        }
        Command::User {
            command: UserCommand::Remove { name },
        } => {
            let name = UserName::new(&name).with_context(|| format!("no user {name:?}"))?;
            let db = connect(&settings).await?;
            db.migrate().await.context("migrations failed")?;
            let removed = db
                .remove_user(&name)
                .await
                .with_context(|| format!("cannot remove user {name}"))?
                .with_context(|| format!("no user {name}"))?;
            eprintln!(
                "user {name} removed ({} login token(s) revoked, {} download session(s) deleted)",
                removed.tokens, removed.sessions
            );
        }
        Command::Openapi | Command::Export(_) => unreachable!("handled before start-up"),
        Command::Import {
            library,
            item,
            item_type,
            files,
        } => {
            let db = connect(&settings).await?;
            db.migrate().await.context("migrations failed")?;
            let buckets = Buckets::from_settings(&settings)?;
            let paths: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
            let (id, version) = import_files(
                &db,
                &buckets.content,
                &library,
                &item,
                item_type.as_deref(),
                &paths,
            )
            .await?;
            eprintln!(
                "imported {} file(s) into {library}/{item}, content version {version}",
                files.len()
            );
            println!("{id}");
        }
    }
    Ok(())
}

async fn connect(settings: &Settings) -> anyhow::Result<Db> {
    let url = settings.database.url.as_deref().unwrap_or_default();
    Db::connect(settings, url)
        .await
        .context("cannot connect to PostgreSQL")
}
