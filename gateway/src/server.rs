//! Wires the Pingora server: the proxy service, the admin listener and the reloader.

use crate::admin::AdminApi;
use crate::config;
use crate::exchange::BackendClient;
use crate::health::HealthChecker;
use crate::housekeeping::Housekeeping;
use crate::jobs::alerts::Alerts;
use crate::jobs::store::{JobStore, SqliteJobStore};
use crate::jobs::worker::JobWorker;
use crate::metrics::Metrics;
use crate::proxy::connections::{self, ClientConnections};
use crate::proxy::lean::LeanPath;
use crate::proxy::FacadeProxy;
use crate::reload::{ConfigReloader, ReloadTriggers};
use crate::state::GatewayState;
use crate::store::EmbeddedStore;
use anyhow::{anyhow, Context};
use pingora_core::listeners::ListenerConfig;
use pingora_core::protocols::l4::stream::L4BufferSettings;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use std::path::Path;
use std::sync::Arc;

pub fn run(config_path: &Path) -> anyhow::Result<()> {
    let compiled = config::load(config_path, 1, &config::LimitReuse::new()).map_err(|errors| {
        for e in &errors {
            tracing::error!(location = %e.location(), help = %e.help, "{}", e.message);
        }
        anyhow!(
            "{} error(s) in {}; run `propylon check --config {}` for details",
            errors.len(),
            config_path.display(),
            config_path.display()
        )
    })?;
    for w in &compiled.warnings {
        tracing::warn!(location = %w.location(), help = %w.help, "{}", w.message);
    }
    let settings = compiled.snapshot.server.clone();
    let metrics = Metrics::new().context("registering metrics")?;
    let store = Arc::new(EmbeddedStore::open(&settings.store_path)?);
    let client = Arc::new(BackendClient::default());
    let alerts = Alerts::new(client.clone());
    let state = Arc::new(GatewayState::new(
        config_path.to_path_buf(),
        compiled.snapshot,
        metrics,
        alerts,
    ));
    state.alerts.bind(&state);
    let jobs: Arc<dyn JobStore> =
        Arc::new(SqliteJobStore::open(&store.path).context("opening the job store")?);
    // A restart must not reset a day's quota.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let saved = store
        .load_quota_counters()
        .context("loading quota counters")?;
    tracing::info!(store = %store.path.display(), counters = saved.len(), "embedded store open");
    state.quota_counters.import(saved, now);
    let reloader = Arc::new(ConfigReloader::new(state.clone()));

    let conf = ServerConf {
        threads: settings.threads,
        // One worker thread: a single-threaded runtime, cheaper than a work-stealing one
        // (bench/README.md). Several: Pingora's work-stealing runtime, because with one
        // runtime per thread its upstream pool parks an idle connection's watcher on a random
        // thread, and a reuse from another thread then often fails ("failed to acquire
        // reusable stream") and opens a new connection.
        work_stealing: settings.threads > 1,
        // Connection failures are answered (502/504) rather than retried elsewhere.
        max_retries: 1,
        // One second after SIGTERM for background services to finish (the last save of quota
        // counters); requests in flight get `graceful_shutdown_timeout_seconds`.
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(5),
        // Timeouts of a second or more on tokio's timers, not on Pingora's clock thread:
        // that thread, once started (by the first connection's handshake timeout), wakes
        // every 10 ms for the life of the process, on the proxy's CPU, busy or idle.
        fast_timeout_to_tokio_threshold_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let proxy = pingora_proxy::http_proxy(
        &server.configuration,
        FacadeProxy::new(state.clone(), client.clone(), jobs.clone()),
    );
    let lean = LeanPath::new(state.clone(), client.clone(), connections::KEEPALIVE);
    let mut proxy = Service::new("proxy".to_string(), ClientConnections::new(proxy, lean));
    // No 64 KiB L4 read buffer per client connection (Pingora's default): HTTP/1 reads into
    // its own header buffer, and an idle keep-alive connection must stay small.
    proxy.add_listener(
        ListenerConfig::tcp(settings.listen.clone()).l4_buffer(L4BufferSettings::default().read(0)),
    );
    server.add_service(proxy);

    if let Some(admin_listen) = &settings.admin_listen {
        let mut admin = Service::new(
            "admin API".to_string(),
            AdminApi {
                state: state.clone(),
                reloader: reloader.clone(),
                jobs: jobs.clone(),
            },
        );
        admin.add_tcp(admin_listen);
        server.add_service(admin);
    }
    server.add_service(background_service(
        "config reloader",
        ReloadTriggers {
            reloader,
            state: state.clone(),
        },
    ));
    server.add_service(background_service(
        "housekeeping",
        Housekeeping {
            state: state.clone(),
            store,
            jobs: jobs.clone(),
        },
    ));
    server.add_service(background_service(
        "health checks",
        HealthChecker {
            state: state.clone(),
            health: state.backend_health.clone(),
            client: client.clone(),
        },
    ));
    server.add_service(background_service(
        "job worker",
        JobWorker {
            state: state.clone(),
            store: jobs,
            client,
            paces: Default::default(),
        },
    ));

    crate::reload::catch_sighup_from_now().context("catching SIGHUP")?;
    tracing::info!(listen = %settings.listen, admin = settings.admin_listen.as_deref().unwrap_or("off"), threads = settings.threads, version = 1, "propylon serving {}", config_path.display());
    server.run_forever()
}
