//! The `periscope` binary: command line, ordered start-up and shutdown.
//!
//! Start-up: load and validate the config, set up logging, open the stores (replaying their
//! write-ahead logs), bind the listeners, then report ready. Shutdown on SIGTERM/SIGINT: stop
//! accepting, let in-flight requests finish (bounded by `server.shutdown_timeout`), then close
//! the stores, which syncs every acknowledged write to disk.

mod import;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use periscope_config::Config;
use periscope_model::TenantId;
use periscope_server::AgentProtocol;
use periscope_server::AppState;
use periscope_storage::MetricStore;
use periscope_tsdb::{TenantLimits, Tsdb, TsdbOptions};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "periscope", version, about = "Metrics, traces and logs for microservices, in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server.
    Serve {
        /// YAML configuration file (every key is optional; without a file, the defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Directory of the embedded stores; overrides `storage.data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Main HTTP listen address; overrides `server.http_listen_address`.
        #[arg(long)]
        http_listen_address: Option<String>,
        /// OTLP/gRPC listen address; overrides `server.otlp_grpc_listen_address`.
        #[arg(long)]
        otlp_grpc_listen_address: Option<String>,
        /// OTLP/HTTP listen address; overrides `server.otlp_http_listen_address`.
        #[arg(long)]
        otlp_http_listen_address: Option<String>,
        /// Jaeger collector (Thrift over HTTP) listen address, empty for none; overrides
        /// `server.jaeger_collector_listen_address`.
        #[arg(long)]
        jaeger_collector_listen_address: Option<String>,
        /// Jaeger agent UDP compact-Thrift address, empty for none; overrides
        /// `server.jaeger_agent_compact_listen_address`.
        #[arg(long)]
        jaeger_agent_compact_listen_address: Option<String>,
        /// Jaeger agent UDP binary-Thrift address, empty for none; overrides
        /// `server.jaeger_agent_binary_listen_address`.
        #[arg(long)]
        jaeger_agent_binary_listen_address: Option<String>,
    },
    /// Check a configuration file without starting anything; prints every problem found.
    Validate {
        /// The file to check.
        #[arg(long)]
        config: PathBuf,
    },
    /// Backfill metrics from an OpenMetrics or Prometheus text file whose samples carry
    /// timestamps, straight into blocks. Run it while the server is stopped.
    Import {
        /// The file (`-` for standard input).
        file: PathBuf,
        /// YAML configuration file, for `storage.data_dir` and the block duration.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Directory of the embedded stores; overrides `storage.data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Tenant to import into.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Input format; by default OpenMetrics when the file ends with `# EOF`, else text 0.0.4.
        #[arg(long, value_parser = ["openmetrics", "prometheus"])]
        format: Option<String>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            config,
            data_dir,
            http_listen_address,
            otlp_grpc_listen_address,
            otlp_http_listen_address,
            jaeger_collector_listen_address,
            jaeger_agent_compact_listen_address,
            jaeger_agent_binary_listen_address,
        } => {
            let addresses = Addresses {
                http: http_listen_address,
                otlp_grpc: otlp_grpc_listen_address,
                otlp_http: otlp_http_listen_address,
                jaeger_collector: jaeger_collector_listen_address,
                jaeger_agent_compact: jaeger_agent_compact_listen_address,
                jaeger_agent_binary: jaeger_agent_binary_listen_address,
            };
            serve(config, data_dir, addresses)
        }
        Command::Validate { config } => validate(config),
        Command::Import { file, config, data_dir, tenant, format } => {
            import_cmd(file, config, data_dir, tenant, format)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("periscope: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    match path {
        Some(p) => Config::load(p).map_err(|e| anyhow::anyhow!("invalid configuration {}:\n{e}", p.display())),
        None => {
            let mut c = Config::default();
            c.resolve();
            Ok(c)
        }
    }
}

fn validate(path: PathBuf) -> Result<()> {
    load_config(Some(&path))?;
    eprintln!("{}: configuration is valid", path.display());
    Ok(())
}

fn import_cmd(
    file: PathBuf,
    config_path: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    tenant: String,
    format: Option<String>,
) -> Result<()> {
    let config = load_config(config_path.as_ref())?;
    let args = import::ImportArgs {
        file,
        data_dir: data_dir.unwrap_or_else(|| config.storage.data_dir.clone()),
        tenant,
        format: format.map(|f| {
            if f == "openmetrics" {
                periscope_textparse::Format::OpenMetrics
            } else {
                periscope_textparse::Format::PromText
            }
        }),
        block_range_ms: config.storage.metrics.block_duration.as_millis() as i64,
    };
    let summary = import::run(args)?;
    #[allow(clippy::print_stdout)] // the summary is the command's output
    {
        print!("{summary}");
    }
    Ok(())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PERISCOPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(config.server.log_level.as_str()));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.server.log_format {
        periscope_config::LogFormat::Json => builder.json().init(),
        periscope_config::LogFormat::Text => builder.init(),
    }
}

fn tsdb_options(config: &Arc<Config>) -> TsdbOptions {
    let wal = &config.storage.wal;
    let fsync = match wal.fsync {
        periscope_config::FsyncMode::Always => periscope_wal::FsyncMode::Always,
        periscope_config::FsyncMode::Interval => periscope_wal::FsyncMode::Interval(wal.fsync_interval.as_std()),
    };
    let limits_config = config.clone();
    TsdbOptions {
        wal: periscope_wal::WalOptions { segment_size: wal.segment_size.bytes(), fsync },
        block_range_ms: config.storage.metrics.block_duration.as_millis() as i64,
        out_of_order_window_ms: config.storage.metrics.out_of_order_window.as_millis() as i64,
        retention_ms: config.storage.metrics.retention_time.as_millis() as i64,
        retention_bytes: config.storage.metrics.retention_size.bytes(),
        maintenance_interval: config.storage.metrics.maintenance_interval.as_std(),
        limits: Arc::new(move |tenant: &TenantId| {
            let l = limits_config.tenant_limits(tenant.as_str());
            TenantLimits {
                max_series: l.max_series_per_tenant,
                creation_grace_ms: l.creation_grace_period.as_millis() as i64,
                max_exemplars: l.max_exemplars,
            }
        }),
    }
}

/// Listen addresses given on the command line.
struct Addresses {
    http: Option<String>,
    otlp_grpc: Option<String>,
    otlp_http: Option<String>,
    jaeger_collector: Option<String>,
    jaeger_agent_compact: Option<String>,
    jaeger_agent_binary: Option<String>,
}

/// Binds `addr`, naming the setting it came from when that fails.
async fn bind(addr: &str, setting: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr} (server.{setting})"))
}

fn serve(config_path: Option<PathBuf>, data_dir: Option<PathBuf>, addresses: Addresses) -> Result<()> {
    let mut config = load_config(config_path.as_ref())?;
    if let Some(d) = data_dir {
        config.storage.data_dir = d;
    }
    if let Some(a) = addresses.http {
        config.server.http_listen_address = a;
    }
    if let Some(a) = addresses.otlp_grpc {
        config.server.otlp_grpc_listen_address = a;
    }
    if let Some(a) = addresses.otlp_http {
        config.server.otlp_http_listen_address = a;
    }
    if let Some(a) = addresses.jaeger_collector {
        config.server.jaeger_collector_listen_address = a;
    }
    if let Some(a) = addresses.jaeger_agent_compact {
        config.server.jaeger_agent_compact_listen_address = a;
    }
    if let Some(a) = addresses.jaeger_agent_binary {
        config.server.jaeger_agent_binary_listen_address = a;
    }
    init_logging(&config);
    let config = Arc::new(config);
    let data_dir = config.storage.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let lock = DirLock::acquire(&data_dir)?;
    tracing::info!(data_dir = %data_dir.display(), version = env!("CARGO_PKG_VERSION"), "starting periscope");

    let tsdb = Tsdb::open(&data_dir.join("metrics"), tsdb_options(&config)).context("cannot open the metrics store")?;
    let store: Arc<dyn MetricStore> = Arc::new(tsdb);
    // The same WAL rules as metrics (`storage.wal`).
    let wal = tsdb_options(&config).wal;
    let tc = &config.storage.traces;
    let trace_opts = periscope_tracestore::TraceDbOptions {
        wal,
        trace_idle: tc.trace_idle_period.as_std(),
        max_block_age: tc.max_block_age.as_std(),
        max_block_spans: usize::try_from(tc.max_block_spans).unwrap_or(usize::MAX),
        retention_time: tc.retention_time.as_std(),
        retention_size: tc.retention_size.bytes(),
        maintenance_interval: tc.maintenance_interval.as_std(),
    };
    let traces = Arc::new(
        periscope_tracestore::TraceDb::open(&data_dir.join("traces"), trace_opts)
            .context("cannot open the trace store")?,
    );
    let lc = &config.storage.logs;
    let ns = |d: &periscope_config::Duration| i64::try_from(d.as_std().as_nanos()).unwrap_or(i64::MAX);
    let log_opts = periscope_logstore::LogDbOptions {
        wal: tsdb_options(&config).wal,
        out_of_order_window_ns: ns(&lc.out_of_order_window),
        max_line_bytes: lc.max_line_size.as_usize(),
        max_streams_per_tenant: usize::try_from(lc.max_streams_per_tenant).unwrap_or(usize::MAX),
        idle: lc.idle_period.as_std(),
        max_block_age: lc.max_block_age.as_std(),
        max_block_entries: usize::try_from(lc.max_block_entries).unwrap_or(usize::MAX),
        retention_time: lc.retention_time.as_std(),
        retention_size: lc.retention_size.bytes(),
        maintenance_interval: lc.maintenance_interval.as_std(),
        ..Default::default()
    };
    let logs = Arc::new(
        periscope_logstore::LogDb::open(&data_dir.join("logs"), log_opts).context("cannot open the log store")?,
    );

    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    let result = runtime.block_on(async {
        let server_config = &config.server;
        let listener = bind(&server_config.http_listen_address, "http_listen_address").await?;
        let otlp_grpc = bind(&server_config.otlp_grpc_listen_address, "otlp_grpc_listen_address").await?;
        let otlp_http = bind(&server_config.otlp_http_listen_address, "otlp_http_listen_address").await?;
        let jaeger_collector = match server_config.jaeger_collector_listen_address.as_str() {
            "" => None,
            a => Some(bind(a, "jaeger_collector_listen_address").await?),
        };
        let mut agents = Vec::new();
        for (addr, setting, protocol) in [
            (
                &server_config.jaeger_agent_compact_listen_address,
                "jaeger_agent_compact_listen_address",
                AgentProtocol::Compact,
            ),
            (
                &server_config.jaeger_agent_binary_listen_address,
                "jaeger_agent_binary_listen_address",
                AgentProtocol::Binary,
            ),
        ] {
            if !addr.is_empty() {
                let socket = tokio::net::UdpSocket::bind(addr.as_str())
                    .await
                    .with_context(|| format!("cannot listen on UDP {addr} (server.{setting})"))?;
                agents.push((socket, protocol));
            }
        }
        // Scraping writes into the default tenant, as Prometheus's own scraping has no tenant.
        let scrape = Arc::new(periscope_scrape::ScrapeManager::start(
            config.scrape_configs.clone(),
            &config.global,
            store.clone(),
            TenantId::default_tenant(),
            periscope_scrape::ScrapeOptions::default(),
        ));
        let mut state = AppState::new(store.clone(), config.clone());
        state.traces = Some(traces.clone());
        state.logs = Some(logs.clone());
        let scrape_metrics = scrape.clone();
        let trace_metrics = traces.clone();
        let log_metrics = logs.clone();
        state.metrics_sources = Arc::new(vec![
            Arc::new(move |out: &mut String| scrape_metrics.write_metrics(out)),
            Arc::new(move |out: &mut String| trace_metrics.write_metrics(out)),
            Arc::new(move |out: &mut String| log_metrics.write_metrics(out)),
        ]);
        let scrape_targets = scrape.clone();
        state.targets = Some(Arc::new(move || targets_snapshot(&scrape_targets)));
        state.ready.store(true, Ordering::Release);
        for (l, what) in [
            (&listener, "listening for HTTP"),
            (&otlp_grpc, "listening for OTLP/gRPC"),
            (&otlp_http, "listening for OTLP/HTTP"),
        ] {
            let local = l.local_addr().context("listener has no address")?;
            tracing::info!(address = %local, "{what}");
        }
        if let Some(l) = &jaeger_collector {
            let local = l.local_addr().context("listener has no address")?;
            tracing::info!(address = %local, "listening for the Jaeger collector protocol");
        }
        for (socket, protocol) in &agents {
            let local = socket.local_addr().context("socket has no address")?;
            match protocol {
                AgentProtocol::Compact => {
                    tracing::info!(address = %local, "listening for Jaeger agent UDP (compact Thrift)")
                }
                AgentProtocol::Binary => {
                    tracing::info!(address = %local, "listening for Jaeger agent UDP (binary Thrift)")
                }
            }
        }
        // One shutdown signal for the three servers.
        let (tx, rx) = tokio::sync::watch::channel(false);
        let stopped = move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        // Span metrics are written to the metrics store every flush interval, and once more
        // when the servers have stopped.
        let flusher = state.span_metrics.clone().map(|sm| {
            let store = store.clone();
            let every = config.traces.span_metrics.flush_interval.as_std();
            let stop = stopped();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                tokio::pin!(stop);
                loop {
                    tokio::select! {
                        _ = tick.tick() => flush_span_metrics(&sm, &store).await,
                        _ = &mut stop => break,
                    }
                }
                sm
            })
        });
        let mut servers = vec![
            ("HTTP", tokio::spawn(periscope_server::serve(listener, state.clone(), stopped()))),
            ("OTLP/HTTP", tokio::spawn(periscope_server::serve_otlp_http(otlp_http, state.clone(), stopped()))),
        ];
        if let Some(l) = jaeger_collector {
            let server = periscope_server::serve_jaeger_collector(l, state.clone(), stopped());
            servers.push(("Jaeger collector", tokio::spawn(server)));
        }
        for (socket, protocol) in agents {
            let server = periscope_server::serve_jaeger_agent(socket, protocol, state.clone(), stopped());
            servers.push(("Jaeger agent", tokio::spawn(server)));
        }
        servers.push((
            "OTLP/gRPC",
            tokio::spawn(async move {
                periscope_server::serve_otlp_grpc(otlp_grpc, state, stopped()).await.map_err(std::io::Error::other)
            }),
        ));
        let signal = shutdown_signal().await;
        tracing::info!(signal, "shutting down");
        // Scrapes stop first (an append in progress finishes), then the servers drain.
        scrape.stop().await;
        let _ = tx.send(true);
        let deadline = tokio::time::Instant::now() + config.server.shutdown_timeout.as_std();
        for (name, server) in servers {
            match tokio::time::timeout_at(deadline, server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::error!(error = %e, server = name, "server failed"),
                Ok(Err(e)) => tracing::error!(error = %e, server = name, "server task failed"),
                Err(_) => {
                    tracing::warn!(server = name, "in-flight requests did not finish within server.shutdown_timeout")
                }
            }
        }
        if let Some(f) = flusher {
            if let Ok(sm) = f.await {
                flush_span_metrics(&sm, &store).await;
            }
        }
        anyhow::Ok(())
    });
    // Dropping the runtime waits for blocking tasks (appends in progress) to finish, so that
    // every acknowledged write is in the log before the final sync.
    runtime.shutdown_timeout(config.server.shutdown_timeout.as_std());
    let closed = store.close();
    let traces_closed = traces.close();
    let logs_closed = logs.close();
    drop(lock);
    result?;
    if let Err(e) = closed {
        bail!("closing the metrics store failed: {e}");
    }
    if let Err(e) = traces_closed {
        bail!("closing the trace store failed: {e}");
    }
    if let Err(e) = logs_closed {
        bail!("closing the log store failed: {e}");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Writes the span metrics' current values to the metrics store.
async fn flush_span_metrics(sm: &Arc<periscope_server::spanmetrics::SpanMetrics>, store: &Arc<dyn MetricStore>) {
    let (sm, store) = (sm.clone(), store.clone());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let done = tokio::task::spawn_blocking(move || {
        for (tenant, batch) in sm.flush(now) {
            if let Err(e) = store.append(&tenant, &batch) {
                tracing::warn!(tenant = %tenant, error = %e, "cannot write span metrics");
            }
        }
    })
    .await;
    if let Err(e) = done {
        tracing::warn!(error = %e, "span metrics flush failed");
    }
}

/// The scraper's targets as `/api/v1/targets` shows them.
fn targets_snapshot(scrape: &periscope_scrape::ScrapeManager) -> periscope_server::TargetsSnapshot {
    use periscope_server::{ActiveTarget, DroppedTarget, TargetsSnapshot};
    TargetsSnapshot {
        active: scrape
            .targets()
            .into_iter()
            .map(|t| ActiveTarget {
                scrape_pool: t.job,
                scrape_url: t.url,
                discovered_labels: t.discovered_labels,
                labels: t.labels,
                health: t.health.as_str(),
                last_error: t.last_error.unwrap_or_default(),
                last_scrape: t.last_scrape,
                last_scrape_duration: t.last_scrape_duration,
                scrape_interval: t.scrape_interval,
                scrape_timeout: t.scrape_timeout,
            })
            .collect(),
        dropped: scrape
            .dropped_targets()
            .into_iter()
            .map(|d| DroppedTarget { scrape_pool: d.job, discovered_labels: d.discovered_labels })
            .collect(),
    }
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

/// An exclusive lock on the data directory, so that two servers never write the same files.
struct DirLock {
    path: PathBuf,
}

impl DirLock {
    fn acquire(dir: &std::path::Path) -> Result<DirLock> {
        let path = dir.join("LOCK");
        // The lock file holds the owner's pid; a stale file from a killed process is taken over
        // when that pid no longer runs.
        if let Ok(pid) = std::fs::read_to_string(&path) {
            let pid = pid.trim();
            if !pid.is_empty()
                && pid != std::process::id().to_string()
                && std::path::Path::new("/proc").join(pid).exists()
            {
                let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                if cmdline.contains("periscope") {
                    bail!("data directory {} is in use by process {pid}", dir.display());
                }
            }
        }
        std::fs::write(&path, std::process::id().to_string())
            .with_context(|| format!("cannot write lock file {}", path.display()))?;
        Ok(DirLock { path })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
