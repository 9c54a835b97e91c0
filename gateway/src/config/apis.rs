//! `apis:` → the route table (facade method + path → operation → backend) and the merged spec.

use super::compile::Ctx;
use super::diagnostic::Diagnostic;
use super::limits::{self, LimitReuse};
use super::raw::{AsyncMode, RawApi, RawOperation, RawRetry};
use super::{edits, exchange};
use crate::snapshot::{AuthSettings, Backend, FacadeRoute, JobPolicy};
use bytes::Bytes;
use http::Method;
use propylon_openapi::security::{operation_security, SchemeKind, Security};
use propylon_openapi::validate::RequestValidator;
use propylon_openapi::{
    merge_specs, FacadeSpec, MergeInput, PathTemplate, RouteTable, RouteTableBuilder, SpecError,
    SpecOperation,
};
use propylon_policies::limits::Limit;
use propylon_policies::retry::RetryPolicy;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub(super) struct CompiledApis {
    pub routes: RouteTable<Arc<FacadeRoute>>,
    /// Operations' own limits, for the next reload to adopt.
    pub limits: Vec<Arc<Limit>>,
    pub by_operation: HashMap<(String, String), Arc<FacadeRoute>>,
    pub merged_spec: Bytes,
    pub spec_files: Vec<PathBuf>,
    pub operations: usize,
}

pub(super) fn compile(
    ctx: &mut Ctx<'_>,
    apis: &[RawApi],
    backends: &BTreeMap<String, Option<Arc<Backend>>>,
    auth: &AuthSettings,
    reuse: &LimitReuse,
) -> CompiledApis {
    let mut routes = RouteTableBuilder::new();
    let mut limits = Vec::new();
    let mut by_operation = HashMap::new();
    let shared = Shared {
        backends,
        auth,
        reuse,
    };
    let mut specs = Vec::new();
    let mut spec_files = Vec::new();
    let mut operations = 0;
    for (i, api) in apis.iter().enumerate() {
        let key = format!("apis.{i}");
        if api.name.trim().is_empty() {
            ctx.error(
                &format!("{key}.name"),
                "an API needs a name",
                "set `name:` to a short identifier such as `customers`",
            );
        }
        if apis[..i].iter().any(|a| a.name == api.name) {
            ctx.error(
                &format!("{key}.name"),
                format!("API name `{}` is used twice", api.name),
                "give each API a unique name",
            );
        }
        let spec_path = ctx.resolve(&api.spec);
        spec_files.push(spec_path.clone());
        let Some(spec) = load_spec(ctx, &format!("{key}.spec"), &spec_path) else {
            continue;
        };
        for (op_id, op) in &api.operations {
            let op_key = format!("{key}.operations.{op_id}");
            let Some(spec_op) = spec.operation(op_id) else {
                let known: Vec<&str> = spec
                    .operations
                    .iter()
                    .map(|o| o.operation_id.as_str())
                    .collect();
                ctx.error(
                    &op_key,
                    format!(
                        "operation `{op_id}` is not in the spec {}",
                        spec_path.display()
                    ),
                    format!("use an operationId of that spec: {}", known.join(", ")),
                );
                continue;
            };
            let Some(route) = compile_operation(ctx, &op_key, api, &spec, spec_op, op, &shared)
            else {
                continue;
            };
            limits.extend(route.limit.iter().cloned());
            let route = Arc::new(route);
            by_operation.insert(
                (route.api.clone(), route.operation_id.clone()),
                route.clone(),
            );
            if let Err(e) = routes.insert(spec_op.method.clone(), &spec_op.path, route) {
                ctx.error(
                    &op_key,
                    format!("cannot route `{op_id}`: {e}"),
                    "make the spec's path templates distinct",
                );
            }
            operations += 1;
        }
        for spec_op in &spec.operations {
            if !api.operations.contains_key(&spec_op.operation_id) {
                ctx.warn(
                    &format!("{key}.operations"),
                    format!(
                        "operation `{}` ({} {}) of API `{}` has no backend: it answers 404",
                        spec_op.operation_id, spec_op.method, spec_op.path, api.name
                    ),
                    format!(
                        "add `{}: {{ backend: ... }}` under `operations`",
                        spec_op.operation_id
                    ),
                );
            }
        }
        specs.push((i, api.name.clone(), spec.document));
    }
    let inputs: Vec<MergeInput<'_>> = specs
        .iter()
        .map(|(_, name, document)| MergeInput {
            api_name: name,
            document,
        })
        .collect();
    let merged_spec = match merge_specs(
        &inputs,
        "Propylon facade",
        env!("CARGO_PKG_VERSION"),
        &propylon_openapi::GatewayAnswers {
            async_operations: &async_operations(apis),
        },
    ) {
        Ok(doc) => Bytes::from(serde_json::to_vec(&doc).unwrap_or_default()),
        Err(errors) => {
            for e in errors {
                ctx.error("apis", format!("the specs cannot be merged: {e}"), "each path and each differing component must belong to one API; rename one of them");
            }
            Bytes::new()
        }
    };
    CompiledApis {
        routes: routes.build(),
        limits,
        by_operation,
        merged_spec,
        spec_files,
        operations,
    }
}

fn load_spec(ctx: &mut Ctx<'_>, key: &str, path: &std::path::Path) -> Option<FacadeSpec> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            ctx.error(key, format!("cannot read the spec file {}: {e}", path.display()), format!("check the path; a relative path is resolved from the config file's folder ({})", ctx.dir.display()));
            return None;
        }
    };
    match FacadeSpec::parse(&text) {
        Ok(spec) => Some(spec),
        Err(e) => {
            let line = match &e {
                SpecError::Syntax { line, .. } => *line,
                _ => None,
            };
            ctx.errors.push(Diagnostic::error(
                path,
                line,
                format!("the spec is not usable: {e}"),
                "fix the OpenAPI 3.x document (every operation needs an operationId)",
            ));
            None
        }
    }
}

/// What every operation is compiled against.
struct Shared<'a> {
    backends: &'a BTreeMap<String, Option<Arc<Backend>>>,
    auth: &'a AuthSettings,
    reuse: &'a LimitReuse,
}

fn compile_operation(
    ctx: &mut Ctx<'_>,
    key: &str,
    api: &RawApi,
    spec: &FacadeSpec,
    spec_op: &SpecOperation,
    op: &RawOperation,
    shared: &Shared<'_>,
) -> Option<FacadeRoute> {
    let Shared {
        backends,
        auth,
        reuse,
    } = *shared;
    // A defined backend that failed to compile was reported where it is defined.
    let backend = backends.get(&op.backend).cloned().flatten();
    if !backends.contains_key(&op.backend) {
        let known: Vec<&str> = backends.keys().map(String::as_str).collect();
        ctx.error(
            &format!("{key}.backend"),
            format!("unknown backend `{}`", op.backend),
            format!(
                "define `{}` under `backends:` or use one of: {}",
                op.backend,
                known.join(", ")
            ),
        );
    }
    let request = op.request.as_ref();
    let method = request.and_then(|r| r.method.as_deref()).and_then(|m| {
        match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
            Ok(method) => Some(method),
            Err(_) => {
                ctx.error(
                    &format!("{key}.request.method"),
                    format!("`{m}` is not an HTTP method"),
                    "use GET, POST, PUT, PATCH, DELETE, ...",
                );
                None
            }
        }
    });
    let path = request
        .and_then(|r| r.path.as_deref())
        .and_then(|p| upstream_path(ctx, key, spec_op, p));
    let headers = edits::headers(
        ctx,
        &format!("{key}.request.headers"),
        request.and_then(|r| r.headers.as_ref()),
    );
    let query = edits::query(
        ctx,
        &format!("{key}.request.query"),
        request.and_then(|r| r.query.as_ref()),
    );
    let response = edits::response(ctx, &format!("{key}.response"), op.response.as_ref());
    let validator = if op.validate == Some(false) {
        None
    } else {
        match RequestValidator::compile(spec, &spec_op.operation_id) {
            Ok(v) if v.is_empty() => None,
            Ok(v) => Some(v),
            Err(e) => {
                ctx.error(
                    key,
                    format!(
                        "the spec's schemas for `{}` cannot be compiled: {e}",
                        spec_op.operation_id
                    ),
                    "fix the parameter or requestBody schema in the spec",
                );
                None
            }
        }
    };
    let security = security(ctx, key, spec, &spec_op.operation_id, auth);
    let limit = op.quotas.as_ref().and_then(|raw| {
        limits::limit(
            ctx,
            &format!("{key}.quotas"),
            &spec_op.operation_id,
            raw,
            reuse,
        )
    });
    let jobs = job_policy(ctx, key, op);
    let backend_xml = backend.as_deref().and_then(|b| b.xml.clone());
    let mut roots = edits::roots(&headers, &query);
    let exchange = exchange::compile(ctx, key, op, validator.as_ref(), backend_xml, &mut roots)
        .map(|ex| exchange::choose_documents(ex, &headers, &query, &response));
    let request_body = exchange.as_ref().and_then(|ex| ex.request_body.as_ref());
    let header_names = edits::header_names(&headers, &query, request_body);
    let claim_names = edits::claim_names(&headers, &query, request_body);
    Some(FacadeRoute {
        api: api.name.clone(),
        operation_id: spec_op.operation_id.clone(),
        backend: backend?,
        method,
        path,
        headers,
        query,
        validator,
        exchange,
        response,
        roots,
        header_names,
        claim_names,
        security: security?,
        limit,
        jobs,
        metrics: Default::default(),
    })
}

const DEFAULT_MAX_ATTEMPTS: u32 = 8;
const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(300);

/// `async` + `retry` → how calls of the operation become jobs and are replayed.
fn job_policy(ctx: &mut Ctx<'_>, key: &str, op: &RawOperation) -> Option<JobPolicy> {
    let always = match op.async_mode? {
        AsyncMode::Never => return None,
        AsyncMode::Fallback => false,
        AsyncMode::Always => true,
    };
    let retry = op.retry.clone().unwrap_or(RawRetry {
        on_status: Vec::new(),
        max_attempts: None,
        backoff: None,
        max_backoff: None,
    });
    let backoff = ctx
        .duration(&format!("{key}.retry.backoff"), retry.backoff.as_deref())
        .unwrap_or(DEFAULT_BACKOFF);
    let max_backoff = ctx
        .duration(
            &format!("{key}.retry.max_backoff"),
            retry.max_backoff.as_deref(),
        )
        .unwrap_or(DEFAULT_MAX_BACKOFF);
    if max_backoff < backoff {
        ctx.error(
            &format!("{key}.retry.max_backoff"),
            "`max_backoff` is shorter than `backoff`",
            "make `max_backoff` at least `backoff`",
        );
    }
    let max_attempts = retry.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
    if max_attempts == 0 {
        ctx.error(
            &format!("{key}.retry.max_attempts"),
            "`max_attempts` must be at least 1",
            "set a positive number",
        );
    }
    if let Some(bad) = retry.on_status.iter().find(|s| !(400..=599).contains(*s)) {
        ctx.error(
            &format!("{key}.retry.on_status"),
            format!("{bad} is not an error status"),
            "list 4xx/5xx statuses, e.g. `[502, 503, 504]`",
        );
    }
    let retry_statuses = if retry.on_status.is_empty() {
        vec![502, 503, 504]
    } else {
        retry.on_status
    };
    let retry = RetryPolicy {
        max_attempts: max_attempts.max(1),
        backoff,
        max_backoff,
        retry_statuses,
    };
    Some(JobPolicy { always, retry })
}

/// The spec's `security` for the operation, checked against what `auth:` can verify.
fn security(
    ctx: &mut Ctx<'_>,
    key: &str,
    spec: &FacadeSpec,
    operation_id: &str,
    auth: &AuthSettings,
) -> Option<Security> {
    let security = operation_security(spec, operation_id)
        .map_err(|e| {
            ctx.error(
                key,
                format!("the spec's security for `{operation_id}` is not usable: {e}"),
                "use http bearer / oauth2 / openIdConnect (JWT) or apiKey in a header",
            )
        })
        .ok()?;
    if let Security::AnyOf(alternatives) = &security {
        for requirement in alternatives.iter().flatten() {
            match &requirement.kind {
                SchemeKind::Jwt if auth.verifier.is_none() => ctx.error(key, format!("`{operation_id}` requires a JWT (scheme `{}`) but `auth.jwt` is not configured", requirement.scheme), "configure `auth.jwt` (issuer, audiences, algorithms, keys)"),
                SchemeKind::ApiKeyHeader(_) if auth.api_keys.is_empty() => ctx.error(key, format!("`{operation_id}` requires an API key (scheme `{}`) but `auth.api_keys` is empty", requirement.scheme), "add `auth.api_keys: [{ consumer, key_sha256 }]`"),
                _ => {}
            }
        }
    }
    Some(security)
}

fn upstream_path(
    ctx: &mut Ctx<'_>,
    key: &str,
    spec_op: &SpecOperation,
    p: &str,
) -> Option<PathTemplate> {
    let template = PathTemplate::parse(p)
        .map_err(|e| {
            ctx.error(
                &format!("{key}.request.path"),
                format!("bad path `{p}`: {e}"),
                "write an absolute path; `{name}` takes a path parameter of the facade operation",
            )
        })
        .ok()?;
    let unknown: Vec<String> = template
        .param_names()
        .filter(|n| !spec_op.path_params.iter().any(|p| p == n))
        .map(|n| format!("{{{n}}}"))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<String> = spec_op
            .path_params
            .iter()
            .map(|p| format!("{{{p}}}"))
            .collect();
        ctx.error(
            &format!("{key}.request.path"),
            format!(
                "`{p}` uses {} which the facade path `{}` does not have",
                unknown.join(", "),
                spec_op.path
            ),
            format!(
                "use only the facade's path parameters: {}",
                known.join(", ")
            ),
        );
        return None;
    }
    Some(template)
}

/// The operations that may answer 202 (`async: fallback | always`): the merged spec tells
/// client generators so, as it tells them of 401, 403 and 429.
fn async_operations(apis: &[RawApi]) -> Vec<&str> {
    apis.iter()
        .flat_map(|api| &api.operations)
        .filter(|(_, op)| matches!(op.async_mode, Some(AsyncMode::Fallback | AsyncMode::Always)))
        .map(|(id, _)| id.as_str())
        .collect()
}
