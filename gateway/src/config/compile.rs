//! The config compiler: every check runs and every fault is collected (as Vector's config
//! compiler does) before anything is published.

use super::diagnostic::Diagnostic;
use super::limits::{self, LimitReuse};
use super::lines::LineIndex;
use super::raw::{RawConfig, RawServer};
use super::{apis, auth, backends, env, later, redact, units};
use crate::snapshot::{ServerSettings, Snapshot, Summary};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// `server.max_body` when not set: bodies buffered for mapping or validation.
const DEFAULT_MAX_BODY: usize = 1024 * 1024;

const ALERT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// `store.result_retention` when not set.
const DEFAULT_RESULT_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// A compiled config with the warnings worth telling the admin.
pub struct Compiled {
    pub snapshot: Snapshot,
    pub warnings: Vec<Diagnostic>,
}

/// Where the compiler is: the file, its line index and what it found so far.
pub(super) struct Ctx<'a> {
    pub file: &'a Path,
    pub dir: PathBuf,
    lines: LineIndex,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// `server.max_body`, the default limit of buffered bodies.
    pub max_body: usize,
}

impl Ctx<'_> {
    pub fn line(&self, key_path: &str) -> Option<usize> {
        self.lines.line_of(key_path)
    }

    pub fn error(&mut self, key_path: &str, message: impl Into<String>, help: impl Into<String>) {
        let line = self.line(key_path);
        self.errors
            .push(Diagnostic::error(self.file, line, message, help));
    }

    pub fn warn(&mut self, key_path: &str, message: impl Into<String>, help: impl Into<String>) {
        let line = self.line(key_path);
        self.warnings
            .push(Diagnostic::warning(self.file, line, message, help));
    }

    /// Parses an optional duration field, recording a fault under `key_path`.
    pub fn duration(&mut self, key_path: &str, value: Option<&str>) -> Option<Duration> {
        let field = key_path.rsplit('.').next().unwrap_or(key_path);
        match units::duration(value?) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    key_path,
                    format!("bad duration in `{field}`: {e}"),
                    "use a number with a unit: ms, s, m, h",
                );
                None
            }
        }
    }

    pub fn size(&mut self, key_path: &str, value: Option<&str>) -> Option<u64> {
        match units::size(value?) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(
                    key_path,
                    format!("bad size: {e}"),
                    "use a number with a unit: KiB, MiB, KB, MB",
                );
                None
            }
        }
    }

    /// Resolves a path written in the config against the config file's folder.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

/// Reads and compiles the config at `path`. Blocking: call it off the async runtime.
pub fn load(path: &Path, version: u64, reuse: &LimitReuse) -> Result<Compiled, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::error(
            path,
            None,
            format!("cannot read the config file: {e}"),
            "check the path given to --config and the file's permissions",
        )]
    })?;
    compile_text(path, &text, version, reuse, |name| std::env::var(name).ok())
}

pub(crate) fn compile_text(
    path: &Path,
    text: &str,
    version: u64,
    reuse: &LimitReuse,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Compiled, Vec<Diagnostic>> {
    let text = env::substitute(text, lookup).map_err(|errs| {
        errs.into_iter()
            .map(|e| Diagnostic::error(path, Some(e.line), e.message, e.help))
            .collect::<Vec<_>>()
    })?;
    let raw: RawConfig = serde_yaml::from_str(&text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        vec![Diagnostic::error(
            path,
            line,
            format!("the config is not valid: {e}"),
            "fix the YAML at this line; DESIGN.md and docs/config.md list every field",
        )]
    })?;
    let mut ctx = Ctx {
        file: path,
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        lines: LineIndex::build(&text),
        errors: Vec::new(),
        warnings: Vec::new(),
        max_body: DEFAULT_MAX_BODY,
    };
    let retention = raw
        .store
        .as_ref()
        .and_then(|st| st.result_retention.as_deref());
    let result_retention = ctx
        .duration("store.result_retention", retention)
        .unwrap_or(DEFAULT_RESULT_RETENTION);
    let server = server_settings(&mut ctx, &raw.server).map(|mut s| {
        let store = raw
            .store
            .as_ref()
            .and_then(|st| st.path.as_deref())
            .unwrap_or("./data");
        s.store_path = ctx.resolve(store);
        s.result_retention = result_retention;
        s
    });
    let backends = backends::compile(&mut ctx, &raw.backends);
    let mut watched_files = vec![path.to_path_buf()];
    let auth = auth::compile(&mut ctx, raw.auth.as_ref(), &mut watched_files);
    let mut limits = limits::plan(&mut ctx, raw.quotas.as_ref(), reuse);
    let apis = apis::compile(&mut ctx, &raw.apis, &backends, &auth, reuse);
    limits.all.extend(apis.limits.iter().cloned());
    later::check(&mut ctx, &raw);
    let alert_webhook = raw
        .alerts
        .as_ref()
        .and_then(|a| a.webhook.as_deref())
        .and_then(|url| super::target::http_target(&mut ctx, "alerts.webhook", url, ALERT_TIMEOUT));
    let redacted_config = redact::redact(serde_json::to_value(&raw).unwrap_or_default());
    match (server, ctx.errors.is_empty()) {
        (Some(server), true) => {
            watched_files.extend(apis.spec_files);
            let summary = Summary {
                apis: raw.apis.len(),
                operations: apis.operations,
                backends: backends.len(),
            };
            Ok(Compiled {
                snapshot: Snapshot {
                    version,
                    loaded_at: SystemTime::now(),
                    server,
                    routes: apis.routes,
                    merged_spec: apis.merged_spec,
                    redacted_config,
                    watched_files,
                    summary,
                    auth,
                    limits,
                    alert_webhook,
                    operations: apis.by_operation,
                },
                warnings: ctx.warnings,
            })
        }
        _ => Err(ctx.errors),
    }
}

fn server_settings(ctx: &mut Ctx<'_>, raw: &RawServer) -> Option<ServerSettings> {
    let mut ok = true;
    if raw.listen.parse::<SocketAddr>().is_err() {
        ctx.error(
            "server.listen",
            format!("`{}` is not a socket address", raw.listen),
            "write `IP:PORT`, e.g. `127.0.0.1:8080` or `0.0.0.0:8080`",
        );
        ok = false;
    }
    if let Some(admin) = &raw.admin_listen {
        if admin.parse::<SocketAddr>().is_err() {
            ctx.error(
                "server.admin_listen",
                format!("`{admin}` is not a socket address"),
                "write `IP:PORT`, e.g. `127.0.0.1:9090`",
            );
            ok = false;
        }
        if raw.admin_listen.as_deref() == Some(raw.listen.as_str()) {
            ctx.error(
                "server.admin_listen",
                "the admin API cannot share the data plane's address",
                "give `admin_listen` a port of its own",
            );
            ok = false;
        }
        if raw.admin_token.as_deref().is_none_or(str::is_empty) {
            ctx.error(
                "server.admin_listen",
                "`admin_listen` is set but `admin_token` is missing or empty",
                "set `admin_token: ${PROPYLON_ADMIN_TOKEN}` and export a long random token",
            );
            ok = false;
        }
    }
    if raw.threads == Some(0) {
        ctx.error(
            "server.threads",
            "`threads` must be at least 1",
            "remove it for one thread per core, or set a positive number",
        );
        ok = false;
    }
    match ctx.size("server.max_body", raw.max_body.as_deref()) {
        Some(limit) => ctx.max_body = usize::try_from(limit).unwrap_or(usize::MAX),
        None if raw.max_body.is_some() => ok = false,
        None => {}
    }
    let threads = raw.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    ok.then(|| ServerSettings {
        store_path: PathBuf::new(),
        result_retention: DEFAULT_RESULT_RETENTION,
        listen: raw.listen.clone(),
        admin_listen: raw.admin_listen.clone(),
        admin_token: raw.admin_token.clone(),
        threads,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
openapi: "3.0.3"
info: { title: t, version: "1" }
paths:
  /customers/{id}:
    get: { operationId: getCustomer, responses: { "200": { description: ok } } }
"#;

    fn compile(config: &str) -> Result<Compiled, Vec<Diagnostic>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.yaml"), SPEC).unwrap();
        let path = dir.path().join("propylon.yaml");
        compile_text(&path, config, 1, &LimitReuse::new(), |name| {
            (name == "TOKEN").then(|| "t0k".to_string())
        })
    }

    const GOOD: &str = "server:\n  listen: 127.0.0.1:8080\n  admin_listen: 127.0.0.1:9090\n  admin_token: ${TOKEN}\nbackends:\n  crm: { url: \"http://127.0.0.1:8081/base/\", timeout: 2s }\napis:\n  - name: customers\n    spec: ./spec.yaml\n    operations:\n      getCustomer:\n        backend: crm\n        request: { method: post, path: \"/crm/{id}\" }\n";

    #[test]
    fn compiles_a_good_config() {
        let compiled = compile(GOOD).unwrap();
        let s = &compiled.snapshot;
        assert_eq!(s.version, 1);
        assert_eq!(s.summary.operations, 1);
        assert_eq!(s.server.admin_token.as_deref(), Some("t0k"));
        let found = match s.routes.lookup(&http::Method::GET, "/customers/7") {
            propylon_openapi::RouteLookup::Found { value, .. } => value.clone(),
            _ => panic!("no route"),
        };
        assert_eq!(found.method, Some(http::Method::POST));
        assert_eq!(found.backend.base_path, "/base");
        assert_eq!(s.redacted_config["server"]["admin_token"], "***redacted***");
        assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
    }

    #[test]
    fn collects_every_fault_with_its_line() {
        let bad = GOOD
            .replace("timeout: 2s", "timeout: 2 parsecs")
            .replace("backend: crm", "backend: billing")
            .replace("/crm/{id}", "/crm/{nope}");
        let errors = compile(&bad).err().unwrap();
        let text: Vec<String> = errors.iter().map(|e| e.one_line()).collect();
        assert_eq!(errors.len(), 3, "{text:#?}");
        // A backend with a bad URL is reported once, not again where operations use it.
        let errors = compile(&GOOD.replace("http://127.0.0.1:8081/base/", "not a url"))
            .err()
            .unwrap();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            text.iter()
                .any(|e| e.contains("propylon.yaml:6") && e.contains("timeout")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("propylon.yaml:12") && e.contains("unknown backend `billing`")),
            "{text:#?}"
        );
        assert!(
            text.iter()
                .any(|e| e.contains("propylon.yaml:13") && e.contains("{nope}")),
            "{text:#?}"
        );
    }

    #[test]
    fn names_a_missing_operation_and_an_unreadable_spec() {
        let missing_op = GOOD.replace("getCustomer:", "getInvoice:");
        let errors = compile(&missing_op).err().unwrap();
        assert!(errors[0]
            .message
            .contains("`getInvoice` is not in the spec"));
        assert!(errors[0].help.contains("getCustomer"));
        let missing_spec = GOOD.replace("./spec.yaml", "./gone.yaml");
        let errors = compile(&missing_spec).err().unwrap();
        assert!(errors[0].message.contains("gone.yaml"));
        assert_eq!(errors[0].line, Some(9));
    }

    #[test]
    fn syntax_errors_and_unknown_fields_have_lines() {
        let errors = compile(&GOOD.replace("  listen:", "  lissen:"))
            .err()
            .unwrap();
        assert_eq!(errors[0].line, Some(2));
        assert!(errors[0].message.contains("lissen"));
        let errors = compile(&GOOD.replace("apis:", "apis: [")).err().unwrap();
        assert!(errors[0].line.is_some());
    }

    #[test]
    fn a_bad_template_path_names_the_line_of_its_leaf() {
        let bad = GOOD.replace(
            "        request: { method: post, path: \"/crm/{id}\" }\n",
            "        request:\n          body:\n            Id: \"$.path.id\"\n            Name: \"$.body[\"\n",
        );
        let errors = compile(&bad).err().unwrap();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].line, Some(16), "{errors:#?}");
        assert!(
            errors[0].message.contains("`/Name`"),
            "{}",
            errors[0].message
        );
        let status = GOOD.replace(
            "        request: { method: post, path: \"/crm/{id}\" }\n",
            "        response: { body: { id: \"$.path.id\" } }\n",
        );
        let errors = compile(&status).err().unwrap();
        assert!(errors[0].message.contains("reads only"), "{errors:#?}");
    }

    #[test]
    fn result_retention_is_configurable() {
        let compiled = compile(&format!(
            "{GOOD}store: {{ kind: embedded, result_retention: 1h }}\n"
        ))
        .unwrap();
        assert_eq!(
            compiled.snapshot.server.result_retention,
            Duration::from_secs(3600)
        );
        assert_eq!(
            compile(GOOD).unwrap().snapshot.server.result_retention,
            DEFAULT_RESULT_RETENTION
        );
        let errors = compile(&format!(
            "{GOOD}store: {{ kind: embedded, result_retention: forever }}\n"
        ))
        .err()
        .unwrap();
        assert!(
            errors[0].message.contains("result_retention"),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_bad_max_body_is_reported_once_whether_the_operation_buffers_or_streams() {
        for request in [
            "request: { method: post, path: \"/crm/{id}\" }",
            "request: { body: { Id: \"$.path.id\" } }",
        ] {
            let bad = GOOD
                .replace("request: { method: post, path: \"/crm/{id}\" }", request)
                .replace(
                    "        backend: crm\n",
                    "        backend: crm\n        max_body: lots\n",
                );
            let errors = compile(&bad).err().unwrap();
            assert_eq!(errors.len(), 1, "{errors:#?}");
            assert!(errors[0].message.contains("lots"), "{errors:#?}");
        }
    }

    #[test]
    fn unset_variables_are_errors() {
        let errors = compile(&GOOD.replace("${TOKEN}", "${UNSET_VAR}"))
            .err()
            .unwrap();
        assert_eq!(errors[0].line, Some(4));
        assert!(errors[0].message.contains("UNSET_VAR"));
    }

    #[test]
    fn api_keys_need_digests_and_secured_operations_need_auth() {
        let with_keys = format!(
            "{GOOD}auth:\n  api_keys:\n    - {{ consumer: c, key_sha256: {} }}\n",
            "a".repeat(64)
        );
        let compiled = compile(&with_keys).unwrap();
        assert!(compiled.warnings.is_empty(), "{:?}", compiled.warnings);
        let bad_key =
            format!("{GOOD}auth:\n  api_keys:\n    - {{ consumer: c, key_sha256: plain }}\n");
        let errors = compile(&bad_key).err().unwrap();
        assert!(errors[0].message.contains("64 hex digits"), "{errors:#?}");
    }
    /// DESIGN.md's example config, every section of it (the key digest made a real one).
    const DESIGN_EXAMPLE: &str = r#"server:
  listen: 127.0.0.1:8080
  admin_listen: 127.0.0.1:9090
  admin_token: ${PROPYLON_ADMIN_TOKEN}      # ${VAR} and ${VAR:-default} are substituted from the environment
  threads: 2                                # worker threads; default: one per core
  max_body: 1MiB                            # bodies buffered for mapping or jobs; larger: 413

store:
  kind: embedded                            # the default: a durable file, no server needed
  path: ./data
  # kind: redis, url: redis://127.0.0.1:6379  — for several gateway nodes sharing jobs and quotas

auth:
  jwt:
    issuer: https://idp.example.com/
    audiences: [enterprise-api]
    algorithms: [RS256, ES256]
    jwks_file: ./keys/jwks.json             # or jwks_url, cached and refreshed on unknown kid
  api_keys:
    - consumer: erp-batch
      key_sha256: 3f0c3f0c3f0c3f0c3f0c3f0c3f0c3f0c3f0c3f0c3f0c3f0c3f0c3f0c3f0c3f0c                   # never the key itself

quotas:
  default: { rate: 50/s, burst: 100, quota: 100000/day }
  consumers:
    erp-batch: { rate: 500/s, burst: 1000 }

backends:
  crm:
    url: http://127.0.0.1:8081
    timeout: 2s
    health: { path: /ping, interval: 5s }
    maintenance: ["Sun 02:00-04:00 UTC"]    # known offline windows: go straight to the queue
    replay: { concurrency: 4, rate: 20/s }  # do not flood a backend that just came back
  erp:
    url: http://127.0.0.1:8082

apis:
  - name: customers
    spec: ./openapi/customers.yaml          # the facade contract, OpenAPI 3.x
    operations:
      getCustomer:                          # an operationId of the spec
        backend: crm
        request:
          method: POST
          path: /crm/GetCustomerById
          headers: { set: { x-legacy-app: propylon }, remove: [cookie] }
          query: { set: { format: json } }
          body: { CustId: "$.path.id" }     # JSONPath over the request context
        response:
          status: { 404: 404 }
          body:
            id: "$.body.CustId"
            name: "$.body.FullName"
            email: "$.body.Contact.Email"
      createOrder:
        backend: erp
        request:
          path: /orders/new
          body:
            Customer: "$.claims.sub"
            Lines:                          # an array mapped element by element
              $each: "$.body.items[*]"
              $to: { Sku: "$.sku", Qty: { $path: "$.qty", $default: 1 } }   # inside $to, $ is the element
        async: fallback                     # never | fallback | always
        retry: { max_attempts: 8, backoff: 1s, max_backoff: 5m }

alerts:
  webhook: http://127.0.0.1:8090/alerts     # POSTed when a job dead-letters
"#;

    #[test]
    fn every_section_of_the_design_example_compiles_and_is_enforced() {
        let spec = r#"
openapi: "3.1.0"
info: { title: t, version: "1" }
paths:
  /customers/{id}:
    get: { operationId: getCustomer, responses: { "200": { description: ok } } }
  /orders:
    post: { operationId: createOrder, responses: { "201": { description: ok } } }
"#;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("openapi")).unwrap();
        std::fs::write(dir.path().join("openapi/customers.yaml"), spec).unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        let jwks = include_str!("../../../tests/fixtures/jwks.json");
        std::fs::write(dir.path().join("keys/jwks.json"), jwks).unwrap();
        let path = dir.path().join("propylon.yaml");
        let compiled = compile_text(&path, DESIGN_EXAMPLE, 1, &LimitReuse::new(), |n| {
            (n == "PROPYLON_ADMIN_TOKEN").then(|| "x".into())
        })
        .unwrap_or_else(|e| {
            panic!(
                "{:#?}",
                e.iter().map(Diagnostic::one_line).collect::<Vec<_>>()
            )
        });
        assert_eq!(compiled.snapshot.summary.operations, 2);
        // `async: fallback` tells client generators of the 202; the other operation has none.
        let spec: serde_json::Value =
            serde_json::from_slice(&compiled.snapshot.merged_spec).unwrap();
        assert!(spec["paths"]["/orders"]["post"]["responses"]["202"].is_object());
        assert!(spec["paths"]["/customers/{id}"]["get"]["responses"]["202"].is_null());
        let warned: Vec<&str> = compiled
            .warnings
            .iter()
            .map(|w| w.message.as_str())
            .collect();
        assert!(
            warned.is_empty(),
            "every section is enforced now: {warned:#?}"
        );
    }
}
