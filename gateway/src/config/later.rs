//! Sections whose behaviour comes in later releases (jobs, health, maintenance): checked
//! now so that `propylon check` catches typos, and announced with a warning so that nobody
//! believes they are enforced. Never a silent ignore.

use super::compile::Ctx;
use super::raw::{RawConfig, StoreKind};

const NOT_YET: &str = "this release validates the section but does not enforce it yet";

pub(super) fn check(ctx: &mut Ctx<'_>, raw: &RawConfig) {
    if let Some(store) = &raw.store {
        if store.kind == StoreKind::Redis {
            if store.url.is_none() {
                ctx.error(
                    "store.kind",
                    "`kind: redis` needs a `url`",
                    "add `url: redis://127.0.0.1:6379`",
                );
            }
            ctx.warn("store.kind", "`kind: redis` is not available yet: this node keeps its quota counters in the embedded store", NOT_YET);
        }
    }
    for (name, backend) in &raw.backends {
        let key = format!("backends.{name}");
        if let Some(health) = &backend.health {
            if !health.path.starts_with('/') {
                ctx.error(
                    &format!("{key}.health.path"),
                    format!("health path `{}` must start with `/`", health.path),
                    "write e.g. `/ping`",
                );
            }
            ctx.duration(
                &format!("{key}.health.interval"),
                health.interval.as_deref(),
            );
            ctx.warn(
                &format!("{key}.health"),
                format!("active health checks of `{name}` are not run yet"),
                NOT_YET,
            );
        }
        for (i, window) in backend.maintenance.iter().enumerate() {
            if let Err(e) = maintenance_window(window) {
                ctx.error(
                    &format!("{key}.maintenance.{i}"),
                    format!("bad maintenance window `{window}`: {e}"),
                    "write `Sun 02:00-04:00 UTC` (day optional, times in 24h UTC)",
                );
            }
        }
        if !backend.maintenance.is_empty() {
            ctx.warn(
                &format!("{key}.maintenance"),
                format!("maintenance windows of `{name}` are not honoured yet"),
                NOT_YET,
            );
        }
        if let Some(replay) = &backend.replay {
            ctx.rate(&format!("{key}.replay.rate"), replay.rate.as_deref());
            ctx.warn(
                &format!("{key}.replay"),
                "`replay` settings take effect with durable jobs in a later release",
                NOT_YET,
            );
        }
    }
    for (i, api) in raw.apis.iter().enumerate() {
        for (op_id, op) in &api.operations {
            let key = format!("apis.{i}.operations.{op_id}");
            if op.max_body.is_some() {
                ctx.size(&format!("{key}.max_body"), op.max_body.as_deref());
            }
        }
    }
}

/// `[Day] HH:MM-HH:MM [UTC]`.
fn maintenance_window(text: &str) -> Result<(), String> {
    const DAYS: [&str; 8] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Daily"];
    let mut parts: Vec<&str> = text.split_whitespace().collect();
    if parts.last() == Some(&"UTC") {
        parts.pop();
    }
    let range = match parts.as_slice() {
        [day, range] if DAYS.contains(day) => *range,
        [range] => *range,
        _ => return Err("expected an optional day (Mon..Sun) and a time range".into()),
    };
    let (from, to) = range.split_once('-').ok_or("the time range needs a `-`")?;
    for t in [from, to] {
        let (h, m) = t
            .split_once(':')
            .ok_or_else(|| format!("`{t}` is not HH:MM"))?;
        let ok = matches!((h.parse::<u8>(), m.parse::<u8>()), (Ok(h), Ok(m)) if h < 24 && m < 60);
        if !ok || h.len() != 2 || m.len() != 2 {
            return Err(format!("`{t}` is not HH:MM"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::maintenance_window;

    #[test]
    fn maintenance_windows() {
        assert!(maintenance_window("Sun 02:00-04:00 UTC").is_ok());
        assert!(maintenance_window("22:00-23:30").is_ok());
        assert!(maintenance_window("Sunday 02:00-04:00").is_err());
        assert!(maintenance_window("Sun 25:00-26:00 UTC").is_err());
    }
}
