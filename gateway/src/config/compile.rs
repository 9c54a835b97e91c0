//! The config compiler: every check runs and every fault is collected (as Vector's config
//! compiler does) before anything is published.

use super::diagnostic::Diagnostic;
use super::lines::LineIndex;
use super::raw::{RawConfig, RawServer};
use super::{apis, backends, env, later, redact, units};
use crate::snapshot::{ServerSettings, Snapshot, Summary};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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

    pub fn rate(&mut self, key_path: &str, value: Option<&str>) {
        if let Some(Err(e)) = value.map(units::rate) {
            self.error(
                key_path,
                format!("bad rate: {e}"),
                "write `N/unit`, unit one of s, m, h, day, month",
            );
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
pub fn load(path: &Path, version: u64) -> Result<Compiled, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![Diagnostic::error(
            path,
            None,
            format!("cannot read the config file: {e}"),
            "check the path given to --config and the file's permissions",
        )]
    })?;
    compile_text(path, &text, version, |name| std::env::var(name).ok())
}

pub(crate) fn compile_text(
    path: &Path,
    text: &str,
    version: u64,
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
    };
    let server = server_settings(&mut ctx, &raw.server);
    let backends = backends::compile(&mut ctx, &raw.backends);
    let apis = apis::compile(&mut ctx, &raw.apis, &backends);
    later::check(&mut ctx, &raw);
    let redacted_config = redact::redact(serde_json::to_value(&raw).unwrap_or_default());
    match (server, ctx.errors.is_empty()) {
        (Some(server), true) => {
            let mut watched_files = vec![path.to_path_buf()];
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
    // Bodies are buffered only by mapping and jobs (later releases); the limit is checked now.
    if raw.max_body.is_some()
        && ctx
            .size("server.max_body", raw.max_body.as_deref())
            .is_none()
    {
        ok = false;
    }
    let threads = raw.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    ok.then(|| ServerSettings {
        listen: raw.listen.clone(),
        admin_listen: raw.admin_listen.clone(),
        admin_token: raw.admin_token.clone(),
        threads,
    })
}
