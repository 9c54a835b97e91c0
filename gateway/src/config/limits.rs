//! `quotas:` → limits per consumer tier and per operation. A limit whose spec did not change
//! across a reload is the same object, so its counters and buckets carry on.

use super::compile::Ctx;
use super::raw::{RawLimit, RawQuotas};
use crate::snapshot::LimitPlan;
use propylon_policies::limits::{Limit, LimitSpec};
use std::collections::HashMap;
use std::sync::Arc;

/// The limits of the running snapshot, by name and spec, for a reload to adopt.
pub type LimitReuse = HashMap<(String, LimitSpec), Arc<Limit>>;

pub(super) fn plan(ctx: &mut Ctx<'_>, raw: Option<&RawQuotas>, reuse: &LimitReuse) -> LimitPlan {
    let mut plan = LimitPlan::default();
    let Some(raw) = raw else { return plan };
    plan.default = raw
        .default
        .as_ref()
        .and_then(|l| limit(ctx, "quotas.default", "default", l, reuse));
    plan.all.extend(plan.default.iter().cloned());
    for (consumer, l) in &raw.consumers {
        if let Some(limit) = limit(
            ctx,
            &format!("quotas.consumers.{consumer}"),
            consumer,
            l,
            reuse,
        ) {
            plan.all.push(limit.clone());
            plan.consumers.insert(consumer.clone(), limit);
        }
    }
    plan
}

/// Compiles one `{rate, burst, quota}`; `name` labels its headers (`RateLimit-Policy`).
pub(super) fn limit(
    ctx: &mut Ctx<'_>,
    key: &str,
    name: &str,
    raw: &RawLimit,
    reuse: &LimitReuse,
) -> Option<Arc<Limit>> {
    let spec = LimitSpec::parse(raw.rate.as_deref(), raw.burst, raw.quota.as_deref())
        .map_err(|e| {
            ctx.error(
                key,
                format!("bad limit: {e}"),
                "write e.g. `{ rate: 50/s, burst: 100, quota: 100000/day }`",
            )
        })
        .ok()?;
    let existing = reuse.get(&(name.to_string(), spec.clone())).cloned();
    Some(existing.unwrap_or_else(|| Arc::new(Limit::new(name, &spec))))
}

/// Every limit of a snapshot, for the next reload.
pub fn reusable(plan: &LimitPlan) -> LimitReuse {
    plan.all
        .iter()
        .map(|l| ((l.name().to_string(), l.spec().clone()), l.clone()))
        .collect()
}
