//! `demo-backends`: the demo "enterprise" behind the bundled example (`examples/propylon.yaml`).
//!
//! Three listeners, all on loopback by default:
//!
//! * a **legacy CRM** (`--crm`, default 127.0.0.1:8081) whose verbs, paths and field names do
//!   not match the clean facade: `POST /crm/GetCustomerById/{id}`, `POST /crm/SearchCustomers`,
//!   `PUT /crm/UpsertCustomer`, `GET /crm/ping`;
//! * an **ERP** (`--erp`, default 127.0.0.1:8082): `POST /orders/new`, `GET /orders/{no}`,
//!   `GET /health`. It can be switched offline: its listener is then closed, so clients get
//!   "connection refused", exactly as when a real backend is down for maintenance;
//! * a **control** listener (`--control`, default 127.0.0.1:8089): `POST /erp/offline`,
//!   `POST /erp/online`, `GET /erp`.
//!
//! Everything is kept in memory; each request is logged as one line on stdout.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use clap::Parser;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Serve the demo enterprise (a legacy CRM and an ERP that can be switched offline) for the
/// bundled Propylon example.
#[derive(Debug, Parser)]
#[command(name = "demo-backends", version, about)]
struct Args {
    /// Address of the legacy CRM.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8081")]
    crm: SocketAddr,
    /// Address of the ERP.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8082")]
    erp: SocketAddr,
    /// Address of the control API that switches the ERP offline and online.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8089")]
    control: SocketAddr,
    /// Start with the ERP offline (its port closed) until `POST /erp/online`.
    #[arg(long)]
    erp_offline: bool,
}

/// How long switching the ERP offline waits for its open connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Locks a mutex; a poisoned lock (a handler panicked) still holds usable demo data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Middleware: one line per request on stdout.
async fn log_request(State(system): State<&'static str>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    let response = next.run(req).await;
    println!(
        "{system:<7} {method} {target} -> {}",
        response.status().as_u16()
    );
    response
}

/// The error body of both legacy systems: `{"ErrCode": ..., "ErrMsg": ...}`.
fn legacy_error(status: StatusCode, code: &str, msg: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "ErrCode": code, "ErrMsg": msg.into() })),
    )
        .into_response()
}

/// Parses a request body as JSON; an empty body counts as `{}`. The error is the message for
/// a 400 answer.
fn parse_json_body(body: &Bytes) -> Result<Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(body).map_err(|e| format!("the request body is not valid JSON: {e}"))
}

// ---------------------------------------------------------------------------------------
// Legacy CRM
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Crm {
    customers: Mutex<HashMap<String, Value>>,
    next_id: Mutex<u64>,
}

impl Crm {
    fn seeded() -> Self {
        let seed = [
            (
                "1",
                "Ada Lovelace",
                "ada@example.com",
                "+44 20 7946 0000",
                "1999-03-01T09:00:00Z",
            ),
            (
                "2",
                "Grace Hopper",
                "grace@example.com",
                "+1 202 555 0142",
                "2001-07-15T14:30:00Z",
            ),
            (
                "3",
                "Alan Turing",
                "alan@example.com",
                "+44 161 496 0123",
                "2004-11-23T08:15:00Z",
            ),
        ];
        let customers = seed
            .into_iter()
            .map(|(id, name, email, phone, created)| {
                (
                    id.to_owned(),
                    json!({
                        "CustId": id,
                        "FullName": name,
                        "Contact": { "Email": email, "Phone": phone },
                        "CreatedTs": created,
                    }),
                )
            })
            .collect();
        Crm {
            customers: Mutex::new(customers),
            next_id: Mutex::new(4),
        }
    }

    /// Numeric ids sort numerically, others after them.
    fn sort_key(id: &str) -> (u64, String) {
        (id.parse().unwrap_or(u64::MAX), id.to_owned())
    }
}

fn crm_router(crm: Arc<Crm>) -> Router {
    Router::new()
        .route("/crm/GetCustomerById/{id}", post(crm_get_customer))
        .route("/crm/SearchCustomers", post(crm_search_customers))
        .route("/crm/UpsertCustomer", put(crm_upsert_customer))
        .route("/crm/ping", get(|| async { "pong" }))
        .fallback(|| async {
            legacy_error(
                StatusCode::NOT_FOUND,
                "NO_SUCH_METHOD",
                "the CRM has no such method",
            )
        })
        .with_state(crm)
        .layer(middleware::from_fn_with_state("crm", log_request))
}

async fn crm_get_customer(State(crm): State<Arc<Crm>>, Path(id): Path<String>) -> Response {
    match lock(&crm.customers).get(&id) {
        Some(customer) => Json(customer.clone()).into_response(),
        None => legacy_error(
            StatusCode::NOT_FOUND,
            "CUST_NOT_FOUND",
            format!("no customer with CustId {id}"),
        ),
    }
}

async fn crm_search_customers(
    State(crm): State<Arc<Crm>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let needle = query.get("name").map(|n| n.to_lowercase());
    let customers = lock(&crm.customers);
    let mut found: Vec<&Value> = customers
        .values()
        .filter(|c| match &needle {
            None => true,
            Some(needle) => c
                .get("FullName")
                .and_then(Value::as_str)
                .is_some_and(|name| name.to_lowercase().contains(needle.as_str())),
        })
        .collect();
    found.sort_by_key(|c| Crm::sort_key(c.get("CustId").and_then(Value::as_str).unwrap_or("")));
    Json(json!({ "Count": found.len(), "Customers": found })).into_response()
}

async fn crm_upsert_customer(State(crm): State<Arc<Crm>>, body: Bytes) -> Response {
    let mut customer = match parse_json_body(&body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return legacy_error(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "UpsertCustomer expects a JSON object",
            )
        }
        Err(msg) => return legacy_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", msg),
    };
    let given = match customer.get("CustId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            return legacy_error(
                StatusCode::BAD_REQUEST,
                "BAD_CUST_ID",
                "CustId must be a non-empty string or a number",
            )
        }
    };
    let mut customers = lock(&crm.customers);
    let id = match given {
        Some(id) => id,
        None => {
            let mut next = lock(&crm.next_id);
            while customers.contains_key(&next.to_string()) {
                *next += 1;
            }
            let id = next.to_string();
            *next += 1;
            id
        }
    };
    customer.insert("CustId".to_owned(), Value::String(id.clone()));
    let customer = Value::Object(customer);
    customers.insert(id, customer.clone());
    Json(customer).into_response()
}

// ---------------------------------------------------------------------------------------
// ERP
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
struct Erp {
    orders: Mutex<ErpOrders>,
}

#[derive(Debug)]
struct ErpOrders {
    by_no: HashMap<String, Value>,
    /// `Idempotency-Key` → order number: a replayed request gets the same order back.
    by_idempotency_key: HashMap<String, String>,
    next_no: u64,
}

impl Erp {
    fn new() -> Self {
        Erp {
            orders: Mutex::new(ErpOrders {
                by_no: HashMap::new(),
                by_idempotency_key: HashMap::new(),
                next_no: 1001,
            }),
        }
    }
}

fn erp_router(erp: Arc<Erp>) -> Router {
    Router::new()
        .route("/orders/new", post(erp_new_order))
        .route("/orders/{no}", get(erp_get_order))
        .route("/health", get(|| async { Json(json!({ "status": "UP" })) }))
        .fallback(|| async {
            legacy_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "the ERP has no such resource",
            )
        })
        .with_state(erp)
        .layer(middleware::from_fn_with_state("erp", log_request))
}

fn order_created(order: &Value) -> Response {
    let mut response = (StatusCode::CREATED, Json(order.clone())).into_response();
    if let Some(no) = order.get("OrderNo").and_then(Value::as_str) {
        if let Ok(location) = format!("/orders/{no}").parse() {
            response.headers_mut().insert(header::LOCATION, location);
        }
    }
    response
}

async fn erp_new_order(State(erp): State<Arc<Erp>>, headers: HeaderMap, body: Bytes) -> Response {
    let payload = match parse_json_body(&body) {
        Ok(payload) => payload,
        Err(msg) => return legacy_error(StatusCode::BAD_REQUEST, "BAD_REQUEST", msg),
    };
    let idempotency_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    let mut orders = lock(&erp.orders);
    if let Some(key) = &idempotency_key {
        if let Some(order) = orders
            .by_idempotency_key
            .get(key)
            .and_then(|no| orders.by_no.get(no))
        {
            return order_created(order);
        }
    }
    let no = format!("SO-{}", orders.next_no);
    orders.next_no += 1;
    let mut order = match payload {
        Value::Object(map) => map,
        other => {
            let mut map = Map::new();
            map.insert("Payload".to_owned(), other);
            map
        }
    };
    order.insert("OrderNo".to_owned(), Value::String(no.clone()));
    order.insert("Status".to_owned(), Value::String("OPEN".to_owned()));
    order.insert("CreatedTs".to_owned(), Value::String(now_rfc3339()));
    let order = Value::Object(order);
    orders.by_no.insert(no.clone(), order.clone());
    if let Some(key) = idempotency_key {
        orders.by_idempotency_key.insert(key, no);
    }
    order_created(&order)
}

async fn erp_get_order(State(erp): State<Arc<Erp>>, Path(no): Path<String>) -> Response {
    match lock(&erp.orders).by_no.get(&no) {
        Some(order) => Json(order.clone()).into_response(),
        None => legacy_error(
            StatusCode::NOT_FOUND,
            "ORDER_NOT_FOUND",
            format!("no order {no}"),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// ERP on/off switch and the control API
// ---------------------------------------------------------------------------------------

/// The ERP listener, which can be closed (offline) and bound again (online).
#[derive(Debug)]
struct ErpSwitch {
    /// Where to listen; after the first bind, the address actually bound (matters for port 0).
    addr: std::sync::Mutex<SocketAddr>,
    router: Router,
    /// `Some` while online. A tokio mutex: switching is serialized across its awaits.
    running: tokio::sync::Mutex<Option<Running>>,
}

#[derive(Debug)]
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ErpSwitch {
    fn new(addr: SocketAddr, router: Router) -> Self {
        ErpSwitch {
            addr: Mutex::new(addr),
            router,
            running: tokio::sync::Mutex::new(None),
        }
    }

    fn addr(&self) -> SocketAddr {
        *lock(&self.addr)
    }

    async fn is_online(&self) -> bool {
        self.running.lock().await.is_some()
    }

    /// Binds the ERP listener (no-op when already online) and returns its address.
    async fn online(&self) -> Result<SocketAddr, String> {
        let mut running = self.running.lock().await;
        if let Some(r) = running.as_ref() {
            return Ok(r.addr);
        }
        let (listener, addr) = bind("ERP", self.addr()).await?;
        *lock(&self.addr) = addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(
            axum::serve(listener, self.router.clone())
                .with_graceful_shutdown(async {
                    // Also stops when the sender is dropped.
                    let _ = stopped.await;
                })
                .into_future(),
        );
        *running = Some(Running { addr, stop, task });
        Ok(addr)
    }

    /// Closes the ERP listener (no-op when already offline). On return the port refuses
    /// connections; open connections got up to [`DRAIN_TIMEOUT`] to finish.
    async fn offline(&self) {
        let mut running = self.running.lock().await;
        let Some(r) = running.take() else {
            return;
        };
        // The receiver is only gone if the server task already ended: nothing to stop.
        let _ = r.stop.send(());
        let mut task = r.task;
        match tokio::time::timeout(DRAIN_TIMEOUT, &mut task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("demo-backends: the ERP server ended with an error: {e}"),
            Ok(Err(e)) => eprintln!("demo-backends: the ERP server task failed: {e}"),
            Err(_) => {
                // The listener is already closed (axum drops it first); only slow
                // connections remain. Cut them off.
                task.abort();
            }
        }
    }
}

fn control_router(erp: Arc<ErpSwitch>) -> Router {
    Router::new()
        .route("/erp", get(control_status))
        .route("/erp/offline", post(control_offline))
        .route("/erp/online", post(control_online))
        .with_state(erp)
        .layer(middleware::from_fn_with_state("control", log_request))
}

async fn erp_status(erp: &ErpSwitch) -> Json<Value> {
    Json(json!({ "online": erp.is_online().await, "addr": erp.addr().to_string() }))
}

async fn control_status(State(erp): State<Arc<ErpSwitch>>) -> Json<Value> {
    erp_status(&erp).await
}

async fn control_offline(State(erp): State<Arc<ErpSwitch>>) -> Json<Value> {
    erp.offline().await;
    println!(
        "erp     is now OFFLINE (connections to {} are refused)",
        erp.addr()
    );
    erp_status(&erp).await
}

async fn control_online(State(erp): State<Arc<ErpSwitch>>) -> Response {
    match erp.online().await {
        Ok(addr) => {
            println!("erp     is now ONLINE on http://{addr}");
            erp_status(&erp).await.into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "online": false, "error": e })),
        )
            .into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// main
// ---------------------------------------------------------------------------------------

async fn bind(what: &str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), String> {
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        format!("cannot listen for the {what} on {addr}: {e} (is another demo-backends running? see --help to pick other addresses)")
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the address of the {what} listener: {e}"))?;
    Ok((listener, local))
}

/// Serves `router` on `listener` in the background; a failure is reported on stderr.
fn spawn_server(what: &'static str, listener: TcpListener, router: Router) {
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("demo-backends: the {what} server stopped: {e}");
        }
    });
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run(args: Args) -> Result<(), String> {
    let (crm_listener, crm_addr) = bind("CRM", args.crm).await?;
    let (control_listener, control_addr) = bind("control API", args.control).await?;
    let erp = Arc::new(ErpSwitch::new(args.erp, erp_router(Arc::new(Erp::new()))));
    if !args.erp_offline {
        erp.online().await?;
    }

    spawn_server("CRM", crm_listener, crm_router(Arc::new(Crm::seeded())));
    spawn_server("control API", control_listener, control_router(erp.clone()));

    let erp_state = if args.erp_offline {
        "OFFLINE"
    } else {
        "online"
    };
    println!("demo-backends ready");
    println!("  legacy CRM   http://{crm_addr}   (try: curl -s -X POST http://{crm_addr}/crm/GetCustomerById/1)");
    println!("  ERP          http://{}   ({erp_state})", erp.addr());
    println!(
        "  control      http://{control_addr}   (POST /erp/offline, POST /erp/online, GET /erp)"
    );
    println!("  stop with Ctrl-C");

    shutdown_signal().await;
    println!("demo-backends stopping");
    erp.offline().await;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-backends: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Sends one HTTP/1.1 request (Connection: close) and returns status and body.
    async fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(raw.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    async fn serve(router: Router) -> SocketAddr {
        let (listener, addr) = bind("test", "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        spawn_server("test", listener, router);
        addr
    }

    #[tokio::test]
    async fn crm_speaks_the_legacy_dialect() {
        let addr = serve(crm_router(Arc::new(Crm::seeded()))).await;

        let (status, body) = request(addr, "POST", "/crm/GetCustomerById/1", "").await;
        assert_eq!(status, 200);
        assert!(body.contains("\"FullName\":\"Ada Lovelace\""), "{body}");

        let (status, body) = request(addr, "POST", "/crm/GetCustomerById/99", "").await;
        assert_eq!(status, 404);
        assert!(body.contains("CUST_NOT_FOUND"), "{body}");

        let (status, body) = request(addr, "POST", "/crm/SearchCustomers?name=HOP", "").await;
        assert_eq!(status, 200);
        assert!(
            body.contains("\"Count\":1") && body.contains("Grace"),
            "{body}"
        );

        let (status, body) = request(
            addr,
            "PUT",
            "/crm/UpsertCustomer",
            r#"{"FullName":"Edsger Dijkstra"}"#,
        )
        .await;
        assert_eq!(status, 200);
        assert!(body.contains("\"CustId\":\"4\""), "{body}");
        let (status, _) = request(addr, "POST", "/crm/GetCustomerById/4", "").await;
        assert_eq!(status, 200);

        let (status, _) = request(addr, "PUT", "/crm/UpsertCustomer", "not json").await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn erp_goes_offline_and_back_online_keeping_its_orders() {
        let erp = ErpSwitch::new(
            "127.0.0.1:0".parse().expect("addr"),
            erp_router(Arc::new(Erp::new())),
        );
        let addr = erp.online().await.expect("online");

        let (status, body) =
            request(addr, "POST", "/orders/new", r#"{"Lines":[{"Sku":"A"}]}"#).await;
        assert_eq!(status, 201);
        assert!(body.contains("\"OrderNo\":\"SO-1001\""), "{body}");

        erp.offline().await;
        assert!(!erp.is_online().await);
        let refused = TcpStream::connect(addr).await;
        assert!(
            refused.is_err(),
            "the ERP port must refuse connections while offline"
        );

        assert_eq!(erp.online().await.expect("online again"), addr);
        let (status, body) = request(addr, "GET", "/orders/SO-1001", "").await;
        assert_eq!(status, 200);
        assert!(body.contains("\"Sku\":\"A\""), "{body}");
        let (status, _) = request(addr, "GET", "/orders/SO-9", "").await;
        assert_eq!(status, 404);
        erp.offline().await;
    }
}
