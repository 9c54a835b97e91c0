//! Request and response mapping: the `request` / `response` blocks of an operation.
//!
//! Templates are compiled once at config load ([`BodyTemplate`], [`ValueTemplate`],
//! [`StatusMap`]) and rendered per request over a context built by [`RequestParts::context`]
//! or [`response_context`], as serde_json's `Value` or as a [`Borrowed`] document (see
//! [`Doc`]). A string starting with `$` is a JSONPath over that context; any other string is a
//! literal. A field whose path finds nothing is left out unless `$default` gives a value.
//!
//! The template language, as admins write it in YAML:
//! - `"$.body.x"`: a JSONPath. Names, `['quoted name']` and `[index]` make a *definite* path,
//!   which gives one value or nothing; `[*]`, slices, filters, unions and `..` give an array
//!   of every match (no match: nothing). Header names may be written with a dot even when
//!   they hold `-` (`$.headers.x-tenant`).
//! - `{ $literal: <any> }`: the value as it is (for text that must start with `$`).
//! - `{ $path: "<path>", $default: <any> }`: the default when the path finds nothing.
//! - `{ $each: "<path>", $to: <template> }`: an array with `$to` rendered per item, `$` being
//!   the item. The items are an indefinite path's matches, or the elements of the array a
//!   definite path finds (a single non-array value is one item).
//! - Any other object: each key maps to a template; keys that find nothing are left out.
//!   Other `$` keys are errors (a typo guard). Arrays: elements that find nothing are left out.
//! - Numbers, booleans, null and other strings: literals.

mod arena;
mod compile;
mod context;
mod doc;
mod emit;
mod error;
mod node;
mod path;
mod reads;
mod roots;
mod snippet;
mod status;
mod syntax;
mod template;
mod value;

#[cfg(test)]
mod tests;

pub use arena::{arena_for, Arena};
pub use context::{
    borrowed_claims, joined_values, response_context, ContextDoc, FieldValues, RequestFields,
    RequestParts,
};
pub use doc::{parse_borrowed, parse_pruned, Borrowed, Doc, NotJson};
pub use error::MappingError;
pub use propylon_json::Bump;
pub use reads::Reads;
pub use roots::{ClaimNames, HeaderNames, MemberNames, Roots};
pub use status::StatusMap;
pub use template::BodyTemplate;
pub use value::ValueTemplate;
