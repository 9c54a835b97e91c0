//! Sections whose behaviour comes in later releases (the redis store): checked
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
}
